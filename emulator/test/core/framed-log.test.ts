/** The framed log: CRC-checked frames, torn-tail detection, group commit. */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { frame, LogWriter, scanLog } from '../../core/framed-log';

describe('framed log', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'iothub-log-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('frames round-trip; a missing file scans as empty', async () => {
    const path = join(dir, 'a.log');
    expect(await scanLog(path)).toEqual({ payloads: [], validLength: 0, fileLength: 0 });
    writeFileSync(path, Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('two'))]));
    const scanned = await scanLog(path);
    expect(scanned.payloads.map(String)).toEqual(['one', 'two']);
    expect(scanned.validLength).toBe(scanned.fileLength);
  });

  test('scanning stops at a flipped bit, a short header or a length past the end', async () => {
    const path = join(dir, 'b.log');
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
    const path = join(dir, 'c.log');
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
});
