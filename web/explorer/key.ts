/**
 * The function key: taken from the URL fragment (`#key=…`, which browsers never send to a server)
 * or typed by the user, and kept in sessionStorage only, so it is gone when the tab closes.
 * No DOM types here: the storage is passed in, so unit tests use a plain object.
 */

export const keyStorageName = 'iot-hub-explorer.functionKey';

export interface KeyStorage {
  getItem(name: string): string | null;
  setItem(name: string, value: string): void;
  removeItem(name: string): void;
}

/**
 * Reads `key` out of a fragment such as `#key=abc&device=sim-1`. Returns the key (if any) and
 * the fragment to leave in the address bar, without the key.
 */
export function takeKeyFromFragment(hash: string): { key?: string; rest: string } {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const key = params.get('key')?.trim();
  params.delete('key');
  const rest = params.toString();
  return { ...(key ? { key } : {}), rest: rest ? `#${rest}` : '' };
}

export function loadKey(storage: KeyStorage): string | undefined {
  const key = storage.getItem(keyStorageName);
  return key ? key : undefined;
}

export function saveKey(storage: KeyStorage, key: string): void {
  storage.setItem(keyStorageName, key.trim());
}

export function forgetKey(storage: KeyStorage): void {
  storage.removeItem(keyStorageName);
}
