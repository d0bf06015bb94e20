/** The framed log: CRC-checked frames, torn-tail detection, group commit. */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { frame, LogWriter, scanLog } from '../../core/framed-log';
import { until } from '../../../test/support/wait';

/** A fresh temp folder for each test, removed after it. */
function tempDirEachTest(): () => string {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'iothub-log-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return () => dir;
}

describe('framed log', () => {
  const dir = tempDirEachTest();

  test('frames round-trip; a missing file scans as empty', async () => {
    const path = join(dir(), 'a.log');
    expect(await scanLog(path)).toEqual({ payloads: [], validLength: 0, fileLength: 0 });
    writeFileSync(path, Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two'))]));
    const scanned = await scanLog(path);
    expect(scanned.payloads.map(String)).toEqual(['one', 'two']);
    expect(scanned.validLength).toBe(scanned.fileLength);
  });

  test('scanning stops at a flipped bit, a short header or a length past the end', async () => {
    const path = join(dir(), 'b.log');
    const good = frame(Buffer.from('good'));
    const bad = frame(Buffer.from('bad!'));
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
    writeFileSync(path, Buffer.concat([good, bad, frame(Buffer.from('after'))]));
    expect((await scanLog(path)).payloads.map(String)).toEqual(['good']);
    writeFileSync(path, Buffer.concat([good, Buffer.from([1, 2, 3])]));
    expect(await scanLog(path)).toMatchObject({
      validLength: good.length,
      fileLength: good.length + 3,
    });
    writeFileSync(
      path,
      Buffer.concat([good, frame(Buffer.from('longer payload')).subarray(0, 12)]),
    );
    expect((await scanLog(path)).validLength).toBe(good.length);
  });

  test('opening for append cuts a torn tail off; appends in one burst share one flush', async () => {
    const path = join(dir(), 'c.log');
    const good = frame(Buffer.from('kept'));
    writeFileSync(path, good);
    appendFileSync(path, Buffer.from([200, 0, 0, 0, 9]));
    const scanned = await scanLog(path);
    const writer = await LogWriter.open(path, scanned.validLength);
    await Promise.all(Array.from({ length: 50 }, (_, i) => writer.append([Buffer.from(`r${i}`)])));
    expect(writer.flushes).toBe(1);
    await writer.append([Buffer.from('alone')]);
    expect(writer.flushes).toBe(2);
    await writer.close();
    const reread = await scanLog(path);
    expect(reread.payloads).toHaveLength(52);
    expect(reread.validLength).toBe(readFileSync(path).length);
  });

  test('a batch written while the previous sync is in flight is synced at once, and settles in order', async () => {
    const path = join(dir(), 'd.log');
    const writer = await LogWriter.open(path, 0);
    // Holds each fdatasync until the test releases it, to see which syncs overlap.
    const handle = (writer as unknown as { handle: { datasync(): Promise<void> } }).handle;
    const sync = handle.datasync.bind(handle);
    const held: (() => void)[] = [];
    handle.datasync = () => new Promise<void>((resolve) => held.push(resolve)).then(sync);
    const settled: string[] = [];
    const first = writer.append([Buffer.from('first')]).then(() => settled.push('first'));
    await until('the first sync', () => (held.length === 1 ? true : undefined), 5_000, 5);
    const second = writer.append([Buffer.from('second')]).then(() => settled.push('second'));
    // The second batch does not wait for the first sync: its own sync starts while that one is out.
    await until('a second sync', () => (held.length === 2 ? true : undefined), 5_000, 5);
    held[1]!();
    await second;
    // The later sync covers both batches (the first was written before it was issued).
    expect(settled).toEqual(['first', 'second']);
    // Still busy while the first sync is out (closing now would close the file under it).
    const drained = writer.drain().then(() => 'drained');
    const turn = new Promise((resolve) => setImmediate(() => resolve('busy')));
    expect(await Promise.race([drained, turn])).toBe('busy');
    held[0]!();
    await first;
    await writer.drain();
    expect(writer.flushes).toBe(2);
    await writer.close();
    expect((await scanLog(path)).payloads.map(String)).toEqual(['first', 'second']);
  });
});

describe('framed log with a background sync interval', () => {
  const dir = tempDirEachTest();

  /** Replaces the writer's fdatasync; returns the calls made so far. */
  function interceptSync(writer: LogWriter, sync: () => Promise<void>): { calls: number } {
    const handle = (writer as unknown as { handle: { datasync(): Promise<void> } }).handle;
    const seen = { calls: 0 };
    handle.datasync = () => {
      seen.calls++;
      return sync();
    };
    return seen;
  }

  test('an append resolves once written, before any fdatasync; one background sync then covers the batch', async () => {
    const path = join(dir(), 'e.log');
    const writer = await LogWriter.open(path, 0, { syncIntervalMs: 5 });
    const held: (() => void)[] = [];
    const seen = interceptSync(writer, () => new Promise<void>((resolve) => held.push(resolve)));
    await Promise.all([writer.append([Buffer.from('a')]), writer.append([Buffer.from('b')])]);
    expect(seen.calls).toBe(0);
    expect((await scanLog(path)).payloads.map(String)).toEqual(['a', 'b']);
    await until('the background sync', () => (held.length === 1 ? true : undefined), 5_000, 5);
    expect(writer.flushes).toBe(0);
    held[0]!();
    await until('the sync to complete', () => (writer.flushes === 1 ? true : undefined), 5_000, 5);
    await writer.close();
    expect(seen.calls).toBe(1);
  });

  test('close syncs what was written since the last sync', async () => {
    const path = join(dir(), 'f.log');
    const writer = await LogWriter.open(path, 0, { syncIntervalMs: 60_000 });
    const seen = interceptSync(writer, () => Promise.resolve());
    await writer.append([Buffer.from('pending')]);
    expect(seen.calls).toBe(0);
    await writer.close();
    expect(seen.calls).toBe(1);
    expect((await scanLog(path)).payloads.map(String)).toEqual(['pending']);
  });

  test('after a failed background sync every later append is refused', async () => {
    const path = join(dir(), 'g.log');
    const writer = await LogWriter.open(path, 0, { syncIntervalMs: 5 });
    const seen = interceptSync(writer, () => Promise.reject(new Error('EIO: i/o error')));
    await writer.append([Buffer.from('written')]);
    await until('the failed sync', () => (seen.calls === 1 ? true : undefined), 5_000, 5);
    await expect(writer.append([Buffer.from('refused')])).rejects.toThrow('EIO');
    await writer.close();
    expect((await scanLog(path)).payloads.map(String)).toEqual(['written']);
  });
});
