/**
 * `npm run monitor` and `npm run simulate` as users run them: they fail at once, saying why, when
 * no hub answers, and monitor reads a hub started without the stack (no `monitor` group).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Message } from 'azure-iot-device';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { mqttDeviceClient, registerDevice } from '../support/devices';
import { repoRoot, startEmulator, type EmulatorInstance } from '../support/emulator';
import { startNode, type NodeChild } from '../support/processes';
import { until } from '../support/wait';

const monitorScript = join(repoRoot(), 'dist', 'devhost', 'stack', 'monitor.js');
const simulateScript = join(repoRoot(), 'dist', 'simulator', 'cli', 'simulate.js');

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise((done) => server.close(done));
  return port;
}

function envFor(dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOCAL_DATA_DIR: dataDir };
  delete env.IOTHUB_CONNECTION_STRING;
  delete env.IOTHUB_EVENTS_CONNECTION;
  return env;
}

describe('monitor and simulate without a running hub', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'dev-tools-'));
  });
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('monitor names the missing connection.json and how to get one', async () => {
    const monitor = startNode(monitorScript, [], { env: envFor(dataDir) });
    expect(await monitor.exited).toBe(1);
    expect(monitor.output()).toContain(
      `monitor: no local IoT Hub: ${join(dataDir, 'iothub', 'connection.json')} does not exist. Start it with npm start`,
    );
  });

  it.each([
    ['monitor', monitorScript, []],
    ['simulate', simulateScript, ['--devices', '1', '--duration', '1s']],
  ])(
    '%s says a stale connection.json names a hub that is not running',
    async (name, script, args) => {
      const port = await closedPort();
      mkdirSync(join(dataDir, 'iothub'), { recursive: true });
      writeFileSync(
        join(dataDir, 'iothub', 'connection.json'),
        JSON.stringify({
          serviceConnectionString: `HostName=localhost:${port};SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5`,
          eventsConnectionString: `Endpoint=sb://localhost:${port}/;SharedAccessKeyName=service;SharedAccessKey=a2V5;EntityPath=local-iothub;UseDevelopmentEmulator=true`,
        }),
      );
      const child = startNode(script, args, { env: envFor(dataDir) });
      expect(await child.exited).toBe(1);
      const output = child.output();
      expect(output).toContain(
        `${name}: the local IoT Hub is not running: nothing answers at localhost:${port} (ECONNREFUSED)`,
      );
      expect(output).toContain('That file is left from an earlier run');
      expect(output).not.toContain('a2V5');
      expect(output).not.toMatch(/^\s+at /m);
    },
  );
});

describe('monitor on a hub started without the stack', () => {
  let root: string;
  let hub: EmulatorInstance;
  let monitor: NodeChild | undefined;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'dev-tools-hub-'));
    // No `--consumer-group monitor`: only $Default exists, as with `npm run emulator`.
    hub = await startEmulator({ dataDir: join(root, 'iothub'), inMemory: true });
  });

  afterAll(async () => {
    monitor?.process.kill('SIGTERM');
    await monitor?.exited;
    await hub.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('falls back to $Default and prints the device-to-cloud messages', async () => {
    const registry = createRegistry(hub.connection.serviceConnectionString);
    const device = await registerDevice(registry, 'monitored-1');
    const client = mqttDeviceClient(
      hub.connection.deviceConnectionString(device.deviceId, device.key),
    );
    await client.open();
    try {
      await client.sendEvent(new Message(JSON.stringify({ windSpeed: 12.5 })));
    } finally {
      await client.close();
    }
    const child = startNode(monitorScript, ['--from-start'], { env: envFor(root) });
    monitor = child;
    await until(
      'monitor to print the message',
      () => (child.output().includes('"origin": "monitored-1"') ? true : undefined),
      30_000,
      100,
    );
    expect(child.output()).toContain('has no consumer group "monitor"');
    expect(child.output()).toContain('"windSpeed": 12.5');
  });
});
