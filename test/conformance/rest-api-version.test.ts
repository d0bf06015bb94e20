/**
 * IoT Hub's REST surface requires a known `api-version` on every request and answers 400
 * `InvalidProtocolVersion` otherwise, before it looks at the route or the credentials.
 *
 * Needs `npm run build` and the test CA trusted through `NODE_EXTRA_CA_CERTS` (`npm test`).
 */
import https from 'node:https';
import { SharedAccessSignature } from 'azure-iot-common';
import { parseConnectionString } from '../../lib/connection-string';
import { startEmulator, type EmulatorInstance } from '../support/emulator';

let emulator: EmulatorInstance;
let authorization: string;

beforeAll(async () => {
  emulator = await startEmulator({ inMemory: true });
  // A valid service credential, made as the SDK makes it.
  const parts = parseConnectionString(emulator.connection.serviceConnectionString);
  const expiry = Math.floor(Date.now() / 1000) + 3600;
  authorization = SharedAccessSignature.create(
    parts.HostName ?? '',
    parts.SharedAccessKeyName ?? '',
    parts.SharedAccessKey ?? '',
    expiry,
  ).toString();
});

afterAll(async () => {
  await emulator?.stop();
});

function get(path: string, auth = authorization): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port: emulator.connection.ports.gateway,
        path,
        headers: { authorization: auth },
      },
      (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    request.on('error', reject);
  });
}

it.each([
  ['missing', '/devices'],
  ['unknown', '/devices?api-version=2099-01-01'],
  ['empty', '/devices?api-version='],
])('a %s api-version is 400 InvalidProtocolVersion', async (_label, path) => {
  const answer = await get(path);
  expect(answer.status).toBe(400);
  expect(answer.body).toContain('ErrorCode:InvalidProtocolVersion');
});

it('checks the api-version before the credentials', async () => {
  const answer = await get('/devices', 'SharedAccessSignature sr=x&sig=y&se=1');
  expect(answer.status).toBe(400);
  expect(answer.body).toContain('InvalidProtocolVersion');
});

it('serves a request with a known api-version', async () => {
  expect((await get('/devices?api-version=2021-04-12')).status).toBe(200);
  expect((await get('/devices?api-version=2020-09-30')).status).toBe(200);
});
