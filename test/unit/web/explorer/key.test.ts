/** The explorer's function key: from the URL fragment into sessionStorage, and out of the address bar. */
import {
  forgetKey,
  keyStorageName,
  loadKey,
  saveKey,
  takeKeyFromFragment,
  type KeyStorage,
} from '../../../../web/explorer/key';

function memoryStorage(): KeyStorage & { items: Map<string, string> } {
  const items = new Map<string, string>();
  return {
    items,
    getItem: (name) => items.get(name) ?? null,
    setItem: (name, value) => void items.set(name, value),
    removeItem: (name) => void items.delete(name),
  };
}

describe('takeKeyFromFragment', () => {
  it('takes the key and leaves the rest of the fragment', () => {
    expect(takeKeyFromFragment('#key=abc%2Bdef&device=sim-1')).toEqual({
      key: 'abc+def',
      rest: '#device=sim-1',
    });
    expect(takeKeyFromFragment('#key=abc')).toEqual({ key: 'abc', rest: '' });
  });

  it('finds no key in an empty fragment or one without it', () => {
    expect(takeKeyFromFragment('')).toEqual({ rest: '' });
    expect(takeKeyFromFragment('#device=sim-1')).toEqual({ rest: '#device=sim-1' });
    expect(takeKeyFromFragment('#key=')).toEqual({ rest: '' });
  });
});

describe('key storage', () => {
  it('saves (trimmed), loads and forgets the key under one name', () => {
    const storage = memoryStorage();
    expect(loadKey(storage)).toBeUndefined();
    saveKey(storage, '  secret-key \n');
    expect(storage.items.get(keyStorageName)).toBe('secret-key');
    expect(loadKey(storage)).toBe('secret-key');
    forgetKey(storage);
    expect(loadKey(storage)).toBeUndefined();
  });
});
