/**
 * Each MQTT byte stream passes one packet-length watcher (issue 11): the MQTT adapter's, which
 * also reports PUBACKs. The server used to attach its own guard on top, so a packet that claims
 * too much was parsed and reported twice. Observed from outside: the oversized packet cuts the
 * connection and is reported once.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';

let emulator: EmulatorInstance;
let ca: Buffer;

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  ca = readFileSync(emulator.connection.caFile);
});

afterAll(async () => {
  await emulator?.stop();
});

function connectTls(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

function closed(socket: tls.TLSSocket): Promise<void> {
  socket.on('error', () => undefined);
  return socket.destroyed
    ? Promise.resolve()
    : new Promise((resolve) => socket.once('close', () => resolve()));
}

/** The emulator's log lines that mention the peer at `port` and a size violation. */
function violationsFrom(port: number): string[] {
  return emulator
    .output()
    .split('\n')
    .filter((line) => line.includes(`:${port}`) && /bytes exceeds/.test(line));
}

test.each(['mqtt', 'gateway'] as const)(
  'a CONNECT claiming 256 MiB on the %s port is cut and reported once',
  async (listener) => {
    const port = emulator.connection.ports[listener];
    if (port === null) throw new Error('the test needs the MQTTS listener');
    const socket = await connectTls(port);
    const peerPort = socket.localPort ?? 0;
    const gone = closed(socket);
    // Fixed header of a CONNECT whose remaining length is the largest MQTT can encode.
    socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    await gone;
    await until('the violation in the log', () =>
      violationsFrom(peerPort).length > 0 ? true : undefined,
    );
    // Log lines are written in order: once a later connection's refusal is logged, a second
    // report of the same packet (written in the same read) would be there too.
    const marker = await connectTls(port);
    const markerPort = marker.localPort ?? 0;
    const markerGone = closed(marker);
    marker.write('not a protocol');
    await markerGone;
    await until('the later refusal in the log', () =>
      emulator.output().includes(`${markerPort}: unrecognised protocol`) ? true : undefined,
    );
    expect(violationsFrom(peerPort)).toEqual([
      expect.stringMatching(/268435455 bytes exceeds 327680/),
    ]);
  },
);
