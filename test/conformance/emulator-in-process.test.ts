/**
 * `startHub()`, the package's in-process hub. aedes (an ES module) cannot load inside Jest's
 * module system, so the hub runs in a plain Node process that imports the package as any app
 * would, reports what it saw and stops; this file checks the report.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { repoRoot } from '../support/emulator';

const script = `
const net = require('node:net');
const { existsSync } = require('node:fs');
const { startHub } = require('@iot-hub-functions/local-iothub');
const accepts = (port) => new Promise((done) => {
  const socket = net.connect(port, '127.0.0.1');
  socket.once('connect', () => { socket.destroy(); done(true); });
  socket.once('error', () => done(false));
});
(async () => {
  const hub = await startHub({ manualClock: true });
  const before = await hub.clock.now();
  const advanced = (await hub.clock.advance(90000)) - before;
  const report = {
    advanced,
    coreMoved: hub.core.clock.now() - before,
    gatewayAccepts: await accepts(hub.connection.ports.gateway),
    eventsAccepts: await accepts(hub.connection.ports.events),
    connectionFile: existsSync(require('node:path').join(hub.dataDir, 'connection.json')),
    keys: Object.keys(hub.connection).sort(),
  };
  await hub.stop();
  report.folderRemoved = !existsSync(hub.dataDir);
  report.gatewayClosed = !(await accepts(hub.connection.ports.gateway));
  process.stdout.write(JSON.stringify(report));
})().catch((error) => { console.error(error); process.exit(1); });
`;

test('startHub runs a whole hub in the calling process, on a clock the caller moves', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], {
    cwd: repoRoot(),
    timeout: 50_000,
  });
  expect(JSON.parse(stdout)).toEqual({
    advanced: 90_000,
    coreMoved: 90_000,
    gatewayAccepts: true,
    eventsAccepts: true,
    connectionFile: true,
    keys: [
      'caFile',
      'eventsConnectionString',
      'eventsName',
      'eventsTlsConnectionString',
      'ports',
      'serviceConnectionString',
    ],
    folderRemoved: true,
    gatewayClosed: true,
  });
});
