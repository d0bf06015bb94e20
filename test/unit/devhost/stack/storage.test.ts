/**
 * How the stack recognises an Azurite that already runs (`devhost/stack/storage.ts`), against a
 * real Azurite: all three services answering is used, none is not, only some is an error that
 * names what is missing; an HTTP server that is not storage does not count. `AzureWebJobsStorage`
 * from the environment wins and is described without its key.
 */
import { createServer, type Server } from 'node:http';
import type { AzuriteInstance } from '../../../support/azurite';
import { startAzurite } from '../../../support/azurite';
import {
  chooseStorage,
  existingAzurite,
  parseAzuritePorts,
} from '../../../../devhost/stack/storage';

jest.setTimeout(60_000);

let azurite: AzuriteInstance;
let other: Server;
let otherPort: number;

beforeAll(async () => {
  azurite = await startAzurite();
  other = createServer((_request, response) => response.end('hello'));
  await new Promise<void>((done) => other.listen(0, '127.0.0.1', done));
  otherPort = (other.address() as { port: number }).port;
});

afterAll(async () => {
  other?.close();
  await azurite?.stop();
});

/** A port nothing listens on (bound once, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  await new Promise((done) => server.close(done));
  return port;
}

test('an Azurite answering on all three ports is found', async () => {
  expect(await existingAzurite(azurite.ports)).toBe(true);
});

test('nothing, or something that is not storage, is not an Azurite', async () => {
  const free = await freePort();
  expect(await existingAzurite({ blob: free, queue: free, table: free })).toBe(false);
  expect(await existingAzurite({ blob: otherPort, queue: otherPort, table: otherPort })).toBe(
    false,
  );
});

test('an Azurite answering on only some ports is an error naming the missing service', async () => {
  const ports = { ...azurite.ports, table: await freePort() };
  await expect(existingAzurite(ports)).rejects.toThrow(
    `an Azurite answers on blob ${ports.blob}, queue ${ports.queue} but not on table ${ports.table}`,
  );
});

test('AzureWebJobsStorage from the environment is used, described without its key', async () => {
  const connectionString =
    'DefaultEndpointsProtocol=https;AccountName=myaccount;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net';
  const storage = await chooseStorage(
    { AzureWebJobsStorage: connectionString },
    '/nonexistent',
    azurite.ports,
    {},
  );
  expect(storage.connectionString).toBe(connectionString);
  expect(storage.child).toBeUndefined();
  expect(storage.description).toContain('myaccount');
  expect(storage.description).not.toContain('c2VjcmV0');
});

test('LOCAL_AZURITE_PORTS takes three ports and names a bad value', () => {
  expect(parseAzuritePorts('1,2,3')).toEqual({ blob: 1, queue: 2, table: 3 });
  expect(parseAzuritePorts(undefined)).toBeUndefined();
  expect(() => parseAzuritePorts('10000,10001')).toThrow(/LOCAL_AZURITE_PORTS must be three ports/);
});
