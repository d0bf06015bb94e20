/**
 * The emulator's command-line contract (issue 3): connection.json, printed details, durable state
 * across a clean restart, clean exit on SIGTERM, and start-up failures that name their cause.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hubCliPath, wellKnownHubIdentity } from '@iot-hub-functions/local-iothub';
import { parseConnectionString } from '../../lib/connection-string';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { ephemeralPortArgs, startEmulator, type EmulatorConnectionFile } from '../support/emulator';

const owner = wellKnownHubIdentity.policies.find((p) => p.name === 'iothubowner');
const service = wellKnownHubIdentity.policies.find((p) => p.name === 'service');
const cli = hubCliPath;

const scratch: string[] = [];
function scratchDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'emulator-cli-test-'));
  scratch.push(dir);
  return dir;
}
/** A scratch folder holding the run's test CA, so the CLI skips generating keys. */
function scratchDirWithCa(): string {
  const dir = scratchDir();
  const source = process.env.TEST_TLS_DIR;
  if (source) cpSync(source, path.join(dir, 'tls'), { recursive: true });
  return dir;
}
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** The error `promise` rejects with; `undefined` when it resolves. */
function failureOf(promise: Promise<unknown>): Promise<Error | undefined> {
  return promise.then(
    () => undefined,
    (e: Error) => e,
  );
}

/** Runs the CLI to completion (it must exit by itself); bounded by `timeoutMs`. */
function runCli(
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the emulator did not exit by itself:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('connection.json and the printed details', () => {
  test('hold working connection strings for every endpoint once every listener is up', async () => {
    const emulator = await startEmulator({ inMemory: true });
    try {
      const file = JSON.parse(
        readFileSync(path.join(emulator.dataDir, 'connection.json'), 'utf8'),
      ) as EmulatorConnectionFile;
      expect(Object.keys(file).sort()).toEqual(
        [
          'caFile',
          'eventsConnectionString',
          'eventsName',
          'eventsTlsConnectionString',
          'ports',
          'serviceConnectionString',
        ].sort(),
      );
      const { ports } = emulator.connection;
      for (const port of [ports.gateway, ports.mqtt, ports.amqp, ports.events]) {
        expect(port).toEqual(expect.any(Number));
        expect(port).toBeGreaterThan(0);
      }
      expect(new Set([ports.gateway, ports.mqtt, ports.amqp, ports.events]).size).toBe(4);

      expect(parseConnectionString(file.serviceConnectionString)).toEqual({
        HostName: `localhost:${ports.gateway}`,
        SharedAccessKeyName: 'iothubowner',
        SharedAccessKey: owner?.primaryKey,
      });
      expect(parseConnectionString(file.eventsConnectionString)).toEqual({
        Endpoint: `sb://localhost:${ports.events}/`,
        SharedAccessKeyName: 'service',
        SharedAccessKey: service?.primaryKey,
        EntityPath: 'local-iothub',
        UseDevelopmentEmulator: 'true',
      });
      // TLS on the standard AMQPS port, for clients that only speak TLS (no port when it is 5671).
      expect(parseConnectionString(file.eventsTlsConnectionString)).toEqual({
        Endpoint: `sb://localhost:${ports.amqp}/`,
        SharedAccessKeyName: 'service',
        SharedAccessKey: service?.primaryKey,
        EntityPath: 'local-iothub',
      });
      expect(file.eventsName).toBe('local-iothub');
      expect(path.isAbsolute(file.caFile)).toBe(true);
      expect(file.caFile).toBe(path.join(emulator.dataDir, 'tls', 'ca.pem'));
      expect(readFileSync(file.caFile, 'utf8')).toContain('BEGIN CERTIFICATE');

      // Every listener answers: each accepts a TCP connection.
      for (const port of [ports.gateway, ports.mqtt, ports.amqp, ports.events]) {
        await new Promise<void>((resolve, reject) => {
          const socket = net.connect(port ?? 0, '127.0.0.1', () => {
            socket.destroy();
            resolve();
          });
          socket.on('error', reject);
        });
      }
      // The gateway's HTTPS answers through the official Registry.
      const registry = createRegistry(file.serviceConnectionString);
      expect((await registry.list()).responseBody).toEqual([]);

      const printed = emulator.output();
      expect(printed).toContain(file.serviceConnectionString);
      expect(printed).toContain(file.eventsConnectionString);
      expect(printed).toContain('NODE_EXTRA_CA_CERTS');
    } finally {
      await emulator.stop();
    }
  });

  test('-1 turns the standard MQTTS and AMQPS ports off', async () => {
    const emulator = await startEmulator({
      inMemory: true,
      args: ['--mqtt-port', '-1', '--amqp-port', '-1'],
    });
    try {
      expect(emulator.connection.ports.mqtt).toBeNull();
      expect(emulator.connection.ports.amqp).toBeNull();
      expect(emulator.connection.ports.gateway).toBeGreaterThan(0);
    } finally {
      await emulator.stop();
    }
  });
});

describe('--identity overrides the well-known credentials', () => {
  const key = (fill: number) => Buffer.alloc(32, fill).toString('base64');

  test('connection strings and authorization use the configured hub name and keys', async () => {
    const file = path.join(scratchDir(), 'identity.json');
    writeFileSync(
      file,
      JSON.stringify({
        hubName: 'my-test-hub',
        policies: [
          {
            name: 'iothubowner',
            primaryKey: key(11),
            secondaryKey: key(12),
            rights: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
          },
          {
            name: 'service',
            primaryKey: key(13),
            secondaryKey: key(14),
            rights: ['ServiceConnect'],
          },
        ],
      }),
    );
    const emulator = await startEmulator({ inMemory: true, args: ['--identity', file] });
    try {
      const { connection } = emulator;
      expect(connection.eventsName).toBe('my-test-hub');
      expect(parseConnectionString(connection.serviceConnectionString).SharedAccessKey).toBe(
        key(11),
      );
      expect(parseConnectionString(connection.eventsConnectionString)).toMatchObject({
        SharedAccessKey: key(13),
        EntityPath: 'my-test-hub',
      });
      await createRegistry(connection.serviceConnectionString).create({ deviceId: 'custom' });
      // The well-known owner key no longer opens the registry.
      const wellKnown = connection.serviceConnectionString.replace(
        /SharedAccessKey=[^;]+/,
        `SharedAccessKey=${owner?.primaryKey ?? ''}`,
      );
      const error = await failureOf(createRegistry(wellKnown).list());
      expect(error?.name).toBe('UnauthorizedError');
    } finally {
      await emulator.stop();
    }
  });

  test('an invalid identity file exits 1 naming the file and the field, without echoing keys', async () => {
    const file = path.join(scratchDir(), 'identity.json');
    const secret = 'bm90LWJhc2U2NCEhIQ==';
    writeFileSync(
      file,
      JSON.stringify({
        hubName: 'h!',
        policies: [{ name: 'iothubowner', primaryKey: secret, secondaryKey: secret, rights: [] }],
      }),
    );
    const result = await runCli(['--data', scratchDir(), '--identity', file, ...ephemeralPortArgs]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toContain('hubName');
    expect(result.stderr).not.toContain(secret);
  });
});

describe('--trusted-device-ca', () => {
  test('a file without a PEM certificate exits 1 naming the file', async () => {
    const file = path.join(scratchDir(), 'not-a-ca.pem');
    writeFileSync(file, 'just text\n');
    const result = await runCli([
      '--data',
      scratchDir(),
      '--trusted-device-ca',
      file,
      ...ephemeralPortArgs,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toContain('no PEM certificate');
  });
});

describe('lifecycle', () => {
  test('SIGTERM exits 0, and durable state and the CA survive a restart on the same folder', async () => {
    const dataDir = scratchDir();
    const first = await startEmulator({ dataDir });
    const caBefore = readFileSync(first.connection.caFile, 'utf8');
    const deviceId = 'survivor';
    const created = (
      await createRegistry(first.connection.serviceConnectionString).create({ deviceId })
    ).responseBody;
    await first.stop('SIGTERM');
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(first.output()).toContain('shutting down');

    const second = await startEmulator({ dataDir });
    try {
      expect(readFileSync(second.connection.caFile, 'utf8')).toBe(caBefore);
      const fetched = (
        await createRegistry(second.connection.serviceConnectionString).get(deviceId)
      ).responseBody;
      expect(fetched.authentication?.symmetricKey).toEqual(created.authentication?.symmetricKey);
      expect(fetched.etag).toBe(created.etag);
    } finally {
      await second.stop();
    }
  });

  test('SIGINT exits 0 too', async () => {
    const emulator = await startEmulator({ inMemory: true });
    await emulator.stop('SIGINT');
    expect(await emulator.exited).toEqual({ code: 0, signal: null });
  });

  test('--in-memory keeps no state across a restart but keeps the CA and connection file in --data', async () => {
    const dataDir = scratchDir();
    const first = await startEmulator({ dataDir, inMemory: true });
    await createRegistry(first.connection.serviceConnectionString).create({
      deviceId: 'ephemeral',
    });
    await first.stop();
    expect(existsSync(path.join(dataDir, 'state'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'tls', 'ca.pem'))).toBe(true);

    const second = await startEmulator({ dataDir, inMemory: true });
    try {
      const error = await failureOf(
        createRegistry(second.connection.serviceConnectionString).get('ephemeral'),
      );
      expect(error?.name).toBe('DeviceNotFoundError');
    } finally {
      await second.stop();
    }
  });
});

describe('start-up failures name their cause', () => {
  test('a busy port exits non-zero naming the port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const busy = (blocker.address() as net.AddressInfo).port;
    try {
      const dataDir = scratchDirWithCa();
      const result = await runCli([
        '--data',
        dataDir,
        '--in-memory',
        ...ephemeralPortArgs,
        '--events-port',
        String(busy),
      ]);
      expect(result.code).not.toBe(0);
      expect(result.code).not.toBeNull();
      expect(result.stderr).toContain(String(busy));
      expect(result.stderr).toMatch(/in use/);
      expect(existsSync(path.join(dataDir, 'connection.json'))).toBe(false);
    } finally {
      blocker.close();
    }
  });

  test('an unusable data folder exits non-zero naming the folder', async () => {
    const notAFolder = path.join(scratchDir(), 'a-file');
    writeFileSync(notAFolder, 'not a folder');
    const result = await runCli(['--data', notAFolder, ...ephemeralPortArgs]);
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toContain(notAFolder);
  });

  test('a malformed port is a usage error (exit 2)', async () => {
    const result = await runCli(['--data', scratchDir(), '--port', 'many']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/port/);
  });

  test.each(['-1', '10001', '0.5', 'often'])(
    'a sync interval of %s ms is a usage error (exit 2) naming its range',
    async (value) => {
      const result = await runCli(['--data', scratchDir(), '--d2c-sync-interval-ms', value]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('sync interval must be an integer from 0 to 10000');
    },
  );

  test('logs never carry keys or tokens', async () => {
    const emulator = await startEmulator({ inMemory: true });
    try {
      const wrongKey = emulator.connection.serviceConnectionString.replace(
        /SharedAccessKey=[^;]+/,
        `SharedAccessKey=${Buffer.alloc(32, 3).toString('base64')}`,
      );
      await createRegistry(wrongKey)
        .list()
        .catch(() => undefined);
      await createRegistry(emulator.connection.serviceConnectionString).create({
        deviceId: 'quiet',
      });
    } finally {
      await emulator.stop();
    }
    // stderr is the log; stdout carries the (well-known) connection details by design.
    const log = emulator
      .output()
      .split('\n')
      .filter((line) => /^\d{4}-\d\d-\d\dT/.test(line));
    expect(log.join('\n')).toMatch(/rejected: 401/);
    for (const line of log) {
      expect(line).not.toMatch(/sig=|SharedAccessSignature sr|SharedAccessKey=/);
      for (const policy of wellKnownHubIdentity.policies)
        expect(line).not.toContain(policy.primaryKey);
      expect(line).not.toContain(Buffer.alloc(32, 3).toString('base64'));
    }
  });
});
