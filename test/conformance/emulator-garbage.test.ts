/**
 * Garbage on every port never crashes the emulator and never disturbs other clients: random bytes,
 * truncated TLS, an HTTP request on the MQTT port, frames that claim gigabytes, and peers that
 * stall before saying what they speak. Meanwhile an official `Registry` keeps working.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Registry } from 'azure-iothub';
import { createRegistry } from '../../lib/iothub/registry-agent';
import { startEmulator, type EmulatorInstance } from '../support/emulator';

let emulator: EmulatorInstance;
let registry: Registry;
let ca: Buffer;
let emulatorExited = false;

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true, args: ['--handshake-timeout-ms', '500'] });
  void emulator.exited.then(() => {
    emulatorExited = true;
  });
  registry = createRegistry(emulator.connection.serviceConnectionString);
  ca = readFileSync(emulator.connection.caFile);
});

afterAll(async () => {
  await emulator?.stop();
});

const ports = () => {
  const { gateway, mqtt, amqp, events } = emulator.connection.ports;
  if (mqtt === null || amqp === null) throw new Error('the test needs every listener');
  return { gateway, mqtt, amqp, events };
};

function connectPlain(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function connectTls(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/**
 * Resolves with what the peer sent once the emulator has closed the connection; fails if it is
 * still open after `timeoutMs` (a generous bound, not a timing assertion).
 */
function closedByEmulator(socket: net.Socket, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined);
    if (socket.destroyed) {
      resolve(Buffer.concat(received));
      return;
    }
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the emulator kept the connection open'));
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received));
    });
  });
}

/** Writes up to `total` bytes of filler, respecting backpressure, until the peer hangs up. */
async function pump(socket: net.Socket, total: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  for (let sent = 0; sent < total && !socket.destroyed; sent += chunk.length) {
    const ok = socket.write(chunk);
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
}

/** An official client working the registry for as long as the garbage lasts. */
function legitimateTraffic(): {
  pause: () => void;
  stop: () => Promise<{ calls: number; failures: string[] }>;
} {
  let running = true;
  const failures: string[] = [];
  let calls = 0;
  const loop = (async () => {
    // Stops early after a few failures, so a broken emulator fails the test instead of spinning.
    for (let i = 0; running && failures.length < 5; i++) {
      const deviceId = `steady-${i}`;
      try {
        await registry.create({ deviceId });
        await registry.get(deviceId);
        await registry.delete(deviceId);
        calls += 3;
      } catch (error) {
        failures.push(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      }
    }
  })();
  return {
    pause: () => {
      running = false;
    },
    stop: async () => {
      running = false;
      await loop;
      return { calls, failures };
    },
  };
}

const amqpHeader = Buffer.from('AMQP\x00\x01\x00\x00', 'latin1');
const amqpSaslHeader = Buffer.from('AMQP\x03\x01\x00\x00', 'latin1');
const hugeAmqpFrame = () => {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0xfffffff0, 0); // size
  header.writeUInt8(2, 4); // doff
  return header;
};
/** MQTT CONNECT claiming the largest remaining length MQTT can express (~256 MB). */
const hugeMqttConnect = Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]);

test('garbage on every port is refused while a legitimate client keeps working', async () => {
  const { gateway, mqtt, amqp, events } = ports();
  const traffic = legitimateTraffic();

  const attacks: { name: string; run: () => Promise<Buffer> }[] = [
    ...Object.entries({ gateway, mqtt, amqp, events }).map(([name, port]) => ({
      name: `random bytes on the ${name} port`,
      run: async () => {
        const socket = await connectPlain(port);
        socket.write(randomBytes(4096));
        return closedByEmulator(socket);
      },
    })),
    {
      name: 'a truncated TLS ClientHello on the gateway',
      run: async () => {
        const socket = await connectPlain(gateway);
        // Handshake record header announcing 512 bytes, followed by 10, then a half-close.
        socket.end(Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), randomBytes(10)]));
        return closedByEmulator(socket);
      },
    },
    {
      name: 'random bytes after the TLS handshake on the gateway',
      run: async () => {
        const socket = await connectTls(gateway);
        socket.write(Buffer.concat([Buffer.from([0xfe, 0x00]), randomBytes(2048)]));
        return closedByEmulator(socket);
      },
    },
    {
      name: 'an HTTP request on the MQTT port',
      run: async () => {
        const socket = await connectTls(mqtt);
        socket.write('GET /devices/?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n\r\n');
        return closedByEmulator(socket);
      },
    },
    {
      name: 'an MQTT CONNECT on the AMQP port',
      run: async () => {
        const socket = await connectTls(amqp);
        socket.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02]));
        return closedByEmulator(socket);
      },
    },
    {
      name: 'a huge AMQP frame on the gateway',
      run: async () => {
        const socket = await connectTls(gateway);
        socket.write(Buffer.concat([amqpHeader, hugeAmqpFrame()]));
        const closed = closedByEmulator(socket);
        await pump(socket, 32 * 1024 * 1024);
        return closed;
      },
    },
    {
      name: 'a huge MQTT packet on the gateway',
      run: async () => {
        const socket = await connectTls(gateway);
        socket.write(hugeMqttConnect);
        const closed = closedByEmulator(socket);
        await pump(socket, 32 * 1024 * 1024);
        return closed;
      },
    },
    {
      name: 'a huge AMQP frame on the events port',
      run: async () => {
        const socket = await connectPlain(events);
        socket.write(Buffer.concat([amqpHeader, hugeAmqpFrame()]));
        const closed = closedByEmulator(socket);
        await pump(socket, 32 * 1024 * 1024);
        return closed;
      },
    },
    {
      name: 'a huge SASL frame on the events port',
      run: async () => {
        const socket = await connectPlain(events);
        socket.write(Buffer.concat([amqpSaslHeader, hugeAmqpFrame()]));
        const closed = closedByEmulator(socket);
        await pump(socket, 32 * 1024 * 1024);
        return closed;
      },
    },
    {
      name: 'a peer that stalls before sending anything (events port)',
      run: async () => closedByEmulator(await connectPlain(events)),
    },
    {
      name: 'a peer that stalls after the TLS handshake (gateway)',
      run: async () => closedByEmulator(await connectTls(gateway)),
    },
    {
      name: 'a peer that stalls in the TLS handshake (gateway)',
      run: async () => closedByEmulator(await connectPlain(gateway)),
    },
  ];

  let results: PromiseSettledResult<Buffer>[];
  try {
    results = await Promise.allSettled(attacks.map((attack) => attack.run()));
  } finally {
    traffic.pause();
  }
  const stillOpen = results
    .map((result, i) => (result.status === 'rejected' ? attacks[i]?.name : undefined))
    .filter((name) => name !== undefined);
  expect(stillOpen).toEqual([]);

  // The HTTP request on the MQTT port got no HTTP answer: it never reached the registry.
  const httpOnMqtt =
    results[attacks.findIndex((a) => a.name === 'an HTTP request on the MQTT port')];
  expect(httpOnMqtt?.status === 'fulfilled' && httpOnMqtt.value.toString()).toBe('');

  const { calls, failures } = await traffic.stop();
  expect(failures).toEqual([]);
  expect(calls).toBeGreaterThan(0);
  expect(emulatorExited).toBe(false);
  expect(emulator.output()).toMatch(/refused connection from .*unrecognised protocol/);
  expect(emulator.output()).toMatch(/exceeds/);
});

/** Resolves with the first complete HTTP response (headers and a content-length body). */
function firstResponse(socket: net.Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no complete response: ${text}`)), timeoutMs);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text);
      if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
        clearTimeout(timer);
        resolve(text);
      }
    });
  });
}

test.each([
  ['declared in Content-Length', 'Content-Length: 104857600'],
  ['streamed in chunks', 'Transfer-Encoding: chunked'],
])(
  'an oversized HTTP body (%s) is answered 413 while the client is still sending',
  async (_how, framing) => {
    const socket = await connectTls(ports().gateway);
    const response = firstResponse(socket);
    socket.write(
      'PUT /devices/big?api-version=2021-04-12 HTTP/1.1\r\nHost: localhost\r\n' +
        `Content-Type: application/json\r\n${framing}\r\n\r\n`,
    );
    if (framing.startsWith('Transfer-Encoding')) {
      // One 2 MiB chunk: over the 1 MiB limit.
      socket.write(`${(2 * 1024 * 1024).toString(16)}\r\n`);
    }
    await pump(socket, 2 * 1024 * 1024);
    const text = await response;
    socket.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toContain('ErrorCode:MessageTooLarge;');
    expect((await registry.list()).responseBody).toEqual(expect.any(Array));
    expect(emulatorExited).toBe(false);
  },
);

test('a malformed HTTP request gets an IoT Hub-style 400 and does not affect the next connection', async () => {
  const socket = await connectTls(ports().gateway);
  const closed = closedByEmulator(socket);
  socket.write('GET /devices HTTP/1.1\r\nBad Header Without Colon\r\n\r\n');
  const response = (await closed).toString('latin1');
  expect(response).toMatch(/^HTTP\/1\.1 400 /);
  expect(response).toContain('ErrorCode:ArgumentInvalid;');
  await registry.create({ deviceId: 'after-garbage' });
  expect((await registry.get('after-garbage')).responseBody.deviceId).toBe('after-garbage');
});
