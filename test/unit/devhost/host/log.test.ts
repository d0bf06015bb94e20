/**
 * devhost's console log: the lines of one turn of the event loop reach stdout in one write, in
 * order (one pipe write per invocation line was about 5 % of the app's CPU under load), and no line
 * is lost when the process exits right after logging it. The exit case runs the built module in
 * a child process (needs `npm run build` first).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createConsoleLog } from '../../../../devhost/host/log';
import { startNode } from '../../../support/processes';

const builtLog = join(
  resolve(__dirname, '..', '..', '..', '..'),
  'dist',
  'devhost',
  'host',
  'log.js',
);

describe('devhost console log', () => {
  afterEach(() => jest.restoreAllMocks());

  it('writes the lines of one event-loop turn with one stdout write, in order', async () => {
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const log = createConsoleLog('information');
    log.info("Executed 'a' (Succeeded)");
    log.warn('slow');
    log.invocation('getDevice', '0123456789abcdef', 'information', 'handler line');
    log.invocation('getDevice', '0123456789abcdef', 'debug', 'below the level');
    expect(write).not.toHaveBeenCalled();

    await new Promise((done) => setImmediate(done));
    expect(write).toHaveBeenCalledTimes(1);
    const lines = String(write.mock.calls[0]?.[0]).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\[[^\]]+\] Executed 'a' \(Succeeded\)$/);
    expect(lines[1]).toMatch(/^\[[^\]]+\] warning: slow$/);
    expect(lines[2]).toMatch(/^\[[^\]]+\] getDevice \(01234567\): handler line$/);
    expect(lines[3]).toBe('');
  });

  it('writes the pending lines when the process exits right after logging them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'devhost-log-'));
    try {
      const script = join(dir, 'exit-after-log.js');
      writeFileSync(
        script,
        `const { createConsoleLog } = require(${JSON.stringify(builtLog)});
const log = createConsoleLog('information');
for (let i = 1; i <= 3; i += 1) log.info('line ' + i);
process.exit(0);
`,
      );
      const child = startNode(script, []);
      expect(await child.exited).toBe(0);
      expect(child.output()).toMatch(/line 1\n.*line 2\n.*line 3\n$/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
