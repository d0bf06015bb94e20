/**
 * The copyable device example (`examples/SimulatedDevice.ts`), built and run as a user runs it
 * (`node dist/examples/SimulatedDevice.js "<connection string>"`) against the whole local stack:
 * its readings reach the API's telemetry route, a C2D message sent through the API is printed and
 * completed by it (status `delivered`), and Ctrl-C stops it with exit code 0.
 *
 * The example is started without `NODE_EXTRA_CA_CERTS`, so it trusts the local hub only through
 * its `--ca` option; one run without either shows the certificate hint instead.
 *
 * Each test sets up what it needs: the tests that need a running example start one
 * (`runningExample`) unless one is already running, so any test runs alone or in any order.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StackProcess } from './support';
import {
  Api,
  asRecord,
  createStackDataDir,
  readTelemetry,
  repoRoot,
  startStackProcess,
  tearDownStack,
  waitFor,
} from './support';
import { startNode, type NodeChild } from '../support/processes';

jest.setTimeout(120_000);

const deviceId = 'example-device';
const example = join(repoRoot, 'dist', 'examples', 'SimulatedDevice.js');

let dataDir: string;
let stack: StackProcess;
let api: Api;
let caFile: string;
let connectionString: string;
let device: NodeChild | undefined;

/** The environment of a user's fresh shell: nothing that already trusts the local hub's CA. */
function untrustingEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.IOTHUB_CA_FILE;
  delete env.IOTHUB_DEVICE_CONNECTION_STRING;
  return env;
}

function runExample(args: readonly string[]): NodeChild {
  return startNode(example, args, { env: untrustingEnv(), cwd: repoRoot });
}

/**
 * The example connected as the test device, sending every 0.5 s: the one already running, or a
 * new one (only one at a time, as the hub keeps one connection per device).
 */
async function runningExample(): Promise<NodeChild> {
  if (!device || device.process.exitCode !== null || device.process.signalCode !== null) {
    const started = runExample([connectionString, '--ca', caFile, '--interval', '0.5']);
    device = started;
    await waitFor('the example to connect', () =>
      /Connected\. Sending/.test(started.output()) ? true : undefined,
    );
  }
  return device;
}

beforeAll(async () => {
  dataDir = createStackDataDir('e2e-example-');
  stack = await startStackProcess(dataDir, {
    SIMULATOR_ENABLED: 'false',
    FEEDBACK_SCHEDULE: '*/2 * * * * *',
    FEEDBACK_DRAIN_SECONDS: '1',
  });
  api = new Api(stack.apiUrl, stack.functionKey);
  caFile = join(dataDir, 'example-ca.pem');
  writeFileSync(caFile, stack.caPem);
  const created = await api.post('/devices', { deviceId });
  expect(created.status).toBe(201);
  connectionString = String(asRecord(created.body).connectionString);
}, 180_000);

afterAll(async () => {
  if (device && device.process.exitCode === null) {
    device.process.kill('SIGKILL');
    await device.exited;
  }
  const exitCode = await tearDownStack({ stack, dataDir });
  if (stack) expect(exitCode).toBe(0);
}, 90_000);

describe('examples/SimulatedDevice.ts against the local stack', () => {
  it('refuses bad input with the usage and exit code 2', async () => {
    const missing = runExample([]);
    expect(await missing.exited).toBe(2);
    expect(missing.output()).toMatch(/no device connection string given\nusage: SimulatedDevice/);

    const noKey = runExample([connectionString.replace(/;SharedAccessKey=[^;]+/, '')]);
    expect(await noKey.exited).toBe(2);
    expect(noKey.output()).toMatch(/not usable: .*SharedAccessKey/);
  });

  it('explains how to trust the local hub when its CA is not trusted', async () => {
    const untrusted = runExample([connectionString]);
    expect(await untrusted.exited).toBe(1);
    const output = untrusted.output();
    expect(output).toMatch(/TLS certificate is not trusted/);
    expect(output).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(output).toMatch(/--ca <file>/);
  });

  it('says when the hub refuses the key, without printing it', async () => {
    const wrongKey = Buffer.from('not-the-device-key').toString('base64');
    const refused = runExample([
      connectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${wrongKey}`),
      '--ca',
      caFile,
    ]);
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toMatch(/The hub refused the credentials/);
    expect(refused.output()).not.toContain(wrongKey);
  });

  it('sends the tutorial telemetry, which the API stores', async () => {
    const running = await runningExample();
    const { items } = await waitFor(
      'two readings from the example in the telemetry route',
      async () => {
        const read = await readTelemetry(api, deviceId, '?limit=10');
        return read.items.length >= 2 ? read : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(running.output()).toMatch(/Connected\. Sending a reading every 0\.5 s/);
    for (const item of items) {
      expect(item.deviceId).toBe(deviceId);
      // The tutorial's formula: 10 + random·4 + 2.
      expect(item.windSpeed).toBeGreaterThanOrEqual(12);
      expect(item.windSpeed).toBeLessThanOrEqual(16);
      expect(item.correlationId).toMatch(/^correlation_\d+$/);
      const n = item.correlationId?.replace('correlation_', '');
      // The back end stores application property names in lower case (docs/telemetry.md).
      expect(item.properties).toEqual({ property: `PropMsg_${n}` });
      // The example prints what it sent, under the same message id.
      expect(running.output()).toContain(`(messageId ${String(item.messageId)})`);
    }
  });

  it('prints and completes a C2D message, whose status becomes delivered', async () => {
    const running = await runningExample();
    const sent = await api.post(`/devices/${deviceId}/messages`, {
      payload: { command: 'blink' },
      ack: 'full',
      messageId: 'example-blink',
      properties: { priority: 'high' },
    });
    expect(sent.status).toBe(202);
    await waitFor('the example to complete the C2D message', () =>
      running.output().includes('Completed C2D message example-blink') ? true : undefined,
    );
    expect(running.output()).toContain(
      'Received C2D message example-blink: {"command":"blink"}\n  properties: {"priority":"high"}',
    );
    // The hub reports the completion in its next feedback batch (closed after at most 15 s).
    const status = await waitFor(
      'the delivered status',
      async () => {
        const response = await api.get(`/devices/${deviceId}/messages/example-blink`);
        return asRecord(response.body).status === 'delivered' ? response.body : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    expect(status).toMatchObject({ messageId: 'example-blink', deviceId, ack: 'full' });
  });

  it('stops cleanly on Ctrl-C and never prints the device key', async () => {
    const running = await runningExample();
    running.process.kill('SIGINT');
    expect(await running.exited).toBe(0);
    expect(running.output()).toContain('Stopping...\n');
    expect(running.output()).toMatch(/\nConnection closed\.\n$/);
    const key = /SharedAccessKey=([^;]+)/.exec(connectionString)?.[1];
    expect(key).toBeDefined();
    expect(running.output()).not.toContain(String(key));
  });
});
