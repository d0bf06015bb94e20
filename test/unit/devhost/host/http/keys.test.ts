import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  authFailure,
  isAuthorized,
  loadOrCreateKeys,
  presentedKey,
} from '../../../../../devhost/host/http/keys';

describe('function keys', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'devhost-keys-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('generates keys once and keeps them in the data folder', () => {
    const first = loadOrCreateKeys(dir, {});
    const second = loadOrCreateKeys(dir, {});
    expect(first.functionKey).toHaveLength(54);
    expect(first.masterKey).not.toBe(first.functionKey);
    expect(second).toEqual(first);
    const file = join(dir, 'keys.json');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      functionKey: first.functionKey,
      masterKey: first.masterKey,
    });
    expect(statSync(file).mode & 0o077).toBe(0);
  });

  it('uses LOCAL_FUNCTION_KEY and LOCAL_MASTER_KEY when set', () => {
    const keys = loadOrCreateKeys(dir, {
      LOCAL_FUNCTION_KEY: 'fn-key',
      LOCAL_MASTER_KEY: 'master-key',
    });
    expect(keys).toMatchObject({ functionKey: 'fn-key', masterKey: 'master-key' });
  });

  it('checks keys per auth level', () => {
    const keys = { functionKey: 'fn-key', masterKey: 'master-key' };
    expect(isAuthorized('anonymous', undefined, keys)).toBe(true);
    expect(isAuthorized('function', undefined, keys)).toBe(false);
    expect(isAuthorized('function', 'fn-key', keys)).toBe(true);
    expect(isAuthorized('function', 'master-key', keys)).toBe(true);
    expect(isAuthorized('function', 'fn-kez', keys)).toBe(false);
    expect(isAuthorized('function', 'fn-key-longer', keys)).toBe(false);
    expect(isAuthorized('admin', 'fn-key', keys)).toBe(false);
    expect(isAuthorized('admin', 'master-key', keys)).toBe(true);
  });

  it('reads the key from the x-functions-key header before the code query parameter', () => {
    expect(presentedKey('from-header', new URLSearchParams('code=from-query'))).toEqual({
      key: 'from-header',
      source: 'x-functions-key header',
    });
    expect(presentedKey(undefined, new URLSearchParams('code=from-query'))).toEqual({
      key: 'from-query',
      source: 'code query parameter',
    });
    expect(presentedKey(undefined, new URLSearchParams(''))).toBeUndefined();
    expect(presentedKey(undefined, new URLSearchParams('code='))).toBeUndefined();
  });

  it('explains a refusal by the key needed and where the wrong one came from, never the key', () => {
    const keys = { functionKey: 'fn-key', masterKey: 'master-key' };
    const header = (key: string) => ({ key, source: 'x-functions-key header' as const });
    expect(authFailure('function', header('fn-key'), keys)).toBeUndefined();
    expect(authFailure('admin', header('master-key'), keys)).toBeUndefined();
    expect(authFailure('function', undefined, keys)).toMatch(/function key.*none was sent/);
    expect(authFailure('admin', header('fn-key'), keys)).toMatch(
      /needs the master key; the x-functions-key header carries the function key/,
    );
    const wrong = authFailure('function', { key: 'guess', source: 'code query parameter' }, keys);
    expect(wrong).toMatch(/code query parameter does not carry a valid one/);
    expect(wrong).not.toMatch(/guess|fn-key|master-key/);
  });
});
