/**
 * The whole local stack (`node dist/devhost/stack.js`, what `npm start` runs) on ephemeral ports:
 * the API over HTTP as curl would use it, the official device SDK as the device, and a restart on
 * the same data folder. Needs `npm run build` and the test CA (`npm test` arranges both; the CA is
 * copied into the stack's data folder so the hub serves a certificate this process trusts).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Message, type Client as DeviceClient } from 'azure-iot-device';
import { until, type Probe } from '../support/wait';
import { mqttDeviceClient } from '../support/devices';
import { startNode, type NodeChild } from '../support/processes';

const root = resolve(__dirname, '..', '..');
let dataDir: string;

interface Stack extends NodeChild {
  api: string;
  key: string;
}

/** Polls for up to 30 s (or `timeoutMs`), every 200 ms: the whole stack answers slowly. */
const waitFor = <T>(what: string, probe: Probe<T>, timeoutMs = 30_000): Promise<T> =>
  until(what, probe, timeoutMs, 200);

async function startStack(): Promise<Stack> {
  const started = startNode(join(root, 'dist', 'devhost', 'stack.js'), [], {
    cwd: root,
    env: {
      ...process.env,
      LOCAL_DATA_DIR: dataDir,
      LOCAL_STACK_EPHEMERAL_PORTS: '1',
      LOCAL_FUNCTION_KEY: 'e2e-function-key',
      SIMULATOR_SCHEDULE: '*/2 * * * * *',
      SIMULATOR_DEVICE_COUNT: '2',
      FEEDBACK_SCHEDULE: '*/2 * * * * *',
      FEEDBACK_DRAIN_SECONDS: '1',
    },
  });
  await waitFor(
    'the stack',
    () => {
      const text = started.output();
      if (started.process.exitCode !== null) throw new Error(`the stack exited:\n${text}`);
      return text.includes('The local stack is running.') ? true : undefined;
    },
    90_000,
  );
  const text = started.output();
  const api = /^ {2}API: +(http:\/\/\S+)/m.exec(text)?.[1] ?? '';
  const key = /^ {2}Function key: +(\S+)/m.exec(text)?.[1] ?? '';
  return { ...started, api, key };
}

async function stopStack(stack: Stack): Promise<void> {
  stack.process.kill('SIGINT');
  expect(await stack.exited).toBe(0);
}

function call(
  stack: Stack,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return fetch(`${stack.api}${path}`, {
    method,
    headers: {
      'x-functions-key': stack.key,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'e2e-stack-'));
  const testTls = process.env.TEST_TLS_DIR;
  if (testTls) {
    const target = join(dataDir, 'iothub', 'tls');
    mkdirSync(target, { recursive: true });
    for (const name of ['ca.pem', 'ca-key.pem'])
      copyFileSync(join(testTls, name), join(target, name));
  }
});

afterAll(() => {
  if (dataDir && existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });
});

describe('the local stack', () => {
  it('serves the tutorial end to end and keeps its state across a restart', async () => {
    let stack = await startStack();
    let device: DeviceClient | undefined;
    try {
      expect(stack.key).toBe('e2e-function-key');
      expect(stack.output()).toContain('export NODE_EXTRA_CA_CERTS=');
      const health = await fetch(`${stack.api}/health`);
      expect(health.status).toBe(200);

      // Device identity, and the API's refusals.
      expect((await fetch(`${stack.api}/devices`)).status).toBe(401);
      expect((await call(stack, 'POST', '/devices', { deviceId: 'bad id!' })).status).toBe(400);
      expect((await call(stack, 'POST', '/devices', { unknown: true })).status).toBe(400);
      const created = await call(stack, 'POST', '/devices', { deviceId: 'e2e-device' });
      expect(created.status).toBe(201);
      const identity = (await created.json()) as { connectionString: string; etag: string };
      expect(identity.connectionString).toContain('DeviceId=e2e-device');
      expect((await call(stack, 'POST', '/devices', { deviceId: 'e2e-device' })).status).toBe(409);
      expect((await call(stack, 'GET', '/devices/no-such-device')).status).toBe(404);

      // The device connects with the returned connection string and sends telemetry.
      device = mqttDeviceClient(identity.connectionString);
      const received: string[] = [];
      device.on('message', (message: Message) => {
        received.push(Buffer.from(message.getData() as Buffer).toString('utf8'));
        void device?.complete(message, () => undefined);
      });
      await device.open();
      const reading = new Message(JSON.stringify({ deviceId: 'e2e-device', windSpeed: 12.5 }));
      reading.messageId = 'e2e-reading-1';
      reading.contentType = 'application/json';
      reading.contentEncoding = 'utf-8';
      await device.sendEvent(reading);
      await device.sendEvent(new Message('this is not telemetry'));
      const telemetry = await waitFor('the processed reading', async () => {
        const response = await call(stack, 'GET', '/devices/e2e-device/telemetry');
        const body = (await response.json()) as {
          items?: { windSpeed: number; messageId?: string }[];
        };
        return body.items && body.items.length > 0 ? body.items : undefined;
      });
      expect(telemetry).toHaveLength(1);
      expect(telemetry[0]).toMatchObject({ windSpeed: 12.5, messageId: 'e2e-reading-1' });

      // The simulator's devices report too.
      await waitFor('simulator telemetry', async () => {
        const response = await call(stack, 'GET', '/devices/sim-1/telemetry');
        const body = (await response.json()) as { items?: unknown[] };
        return body.items && body.items.length > 0 ? true : undefined;
      });

      // Cloud-to-device with full acknowledgement: the device gets it, the status becomes delivered.
      const sent = await call(stack, 'POST', '/devices/e2e-device/messages', {
        payload: { command: 'blink' },
        ack: 'full',
      });
      expect(sent.status).toBe(202);
      const { messageId } = (await sent.json()) as { messageId: string };
      await waitFor('the C2D message at the device', () =>
        received.length > 0 ? true : undefined,
      );
      expect(JSON.parse(received[0]!)).toEqual({ command: 'blink' });
      await waitFor(
        'delivered status',
        async () => {
          const response = await call(stack, 'GET', `/devices/e2e-device/messages/${messageId}`);
          const body = (await response.json()) as { status?: string };
          return body.status === 'delivered' ? true : undefined;
        },
        60_000,
      );

      await device.close();
      device = undefined;
      await stopStack(stack);

      // Restart on the same data folder: devices, readings and statuses are still there.
      stack = await startStack();
      const again = (await (await call(stack, 'GET', '/devices/e2e-device/telemetry')).json()) as {
        items: unknown[];
      };
      expect(again.items).toHaveLength(1);
      const status = (await (
        await call(stack, 'GET', `/devices/e2e-device/messages/${messageId}`)
      ).json()) as { status: string };
      expect(status.status).toBe('delivered');

      // Disable, then delete.
      const current = (await (await call(stack, 'GET', '/devices/e2e-device')).json()) as {
        etag: string;
      };
      const disabled = await call(
        stack,
        'PATCH',
        '/devices/e2e-device',
        { status: 'disabled' },
        { 'if-match': current.etag },
      );
      expect(disabled.status).toBe(200);
      expect(((await disabled.json()) as { status: string }).status).toBe('disabled');
      expect(
        (
          await call(
            stack,
            'PATCH',
            '/devices/e2e-device',
            { status: 'enabled' },
            { 'if-match': '"stale"' },
          )
        ).status,
      ).toBe(412);
      expect([200, 204]).toContain((await call(stack, 'DELETE', '/devices/e2e-device')).status);
      expect((await call(stack, 'GET', '/devices/e2e-device')).status).toBe(404);
    } finally {
      await device?.close().catch(() => undefined);
      if (stack.process.exitCode === null) await stopStack(stack);
    }
    // Two cold starts of four processes: allow for a loaded CI machine.
  }, 150_000);
});
