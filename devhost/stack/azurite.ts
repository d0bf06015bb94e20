/**
 * The one Azurite launcher: the stack's own storage (`storage.ts`, data in a folder) and the
 * tests' and benchmarks' private ones (`test/support/azurite.ts`, in memory) both start it here.
 *
 * Azurite runs as a child of the stack (`child-process.ts`: it ends with whatever started it) on
 * the ports asked for, or on port 0: it reports the ports it actually bound, so no other process
 * can take a port picked beforehand. Ready means all three services said so and accept a TCP
 * connection.
 */
import { connect } from 'node:net';
import { buildConnectionString } from '../../lib/connection-string';
import type { ManagedChild, StartChildOptions } from './child-process';
import { startChild, watchedNodeArgs } from './child-process';

/** Azurite's documented development account (public, like the local hub's keys). */
export const azuriteAccount = 'devstoreaccount1';
export const azuriteKey =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuritePorts {
  blob: number;
  queue: number;
  table: number;
}

export interface AzuriteEndpoints {
  /** The development account's connection string with explicit loopback endpoints. */
  connectionString: string;
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
}

export function azuriteEndpoints(ports: AzuritePorts): AzuriteEndpoints {
  const blobEndpoint = `http://127.0.0.1:${ports.blob}/${azuriteAccount}`;
  const queueEndpoint = `http://127.0.0.1:${ports.queue}/${azuriteAccount}`;
  const tableEndpoint = `http://127.0.0.1:${ports.table}/${azuriteAccount}`;
  const connectionString = buildConnectionString({
    DefaultEndpointsProtocol: 'http',
    AccountName: azuriteAccount,
    AccountKey: azuriteKey,
    BlobEndpoint: blobEndpoint,
    QueueEndpoint: queueEndpoint,
    TableEndpoint: tableEndpoint,
  });
  return { connectionString, blobEndpoint, queueEndpoint, tableEndpoint };
}

export interface AzuriteOptions {
  /** The data folder; absent: in memory (Azurite then forbids a location). */
  location?: string;
  /** Absent: free ports, as reported. */
  ports?: AzuritePorts;
  /** No access log (the tests' Azurite; the stack keeps it for its recent-output reports). */
  silent?: boolean;
  /** Working folder (Azurite writes scratch files there); default the location. */
  cwd?: string;
  /** How long all three services may take to listen (default 30 s). */
  startTimeoutMs?: number;
}

export interface AzuriteProcess {
  child: ManagedChild;
  /** Resolves with the bound ports once every service answers; rejects if Azurite exits first. */
  ready: Promise<AzuritePorts>;
}

function azuriteArgs(options: AzuriteOptions): string[] {
  const port = (service: keyof AzuritePorts) => String(options.ports?.[service] ?? 0);
  return [
    // The CLI entry starts all three services in one process.
    require.resolve('azurite/dist/src/azurite.js'),
    ...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']),
    ...['--blobHost', '127.0.0.1', '--queueHost', '127.0.0.1', '--tableHost', '127.0.0.1'],
    ...['--blobPort', port('blob'), '--queuePort', port('queue'), '--tablePort', port('table')],
    ...['--skipApiVersionCheck', '--loose', '--disableProductStyleUrl'],
    // Telemetry off: Azurite otherwise tries to reach Application Insights from a dev machine.
    '--disableTelemetry',
    ...(options.silent ? ['--silent'] : []),
  ];
}

/** Whether something accepts a TCP connection on the loopback port. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntilPortsAnswer(ports: AzuritePorts, deadline: number): Promise<void> {
  const list = [ports.blob, ports.queue, ports.table];
  for (;;) {
    if ((await Promise.all(list.map(portAnswers))).every(Boolean)) return;
    if (Date.now() > deadline) throw new Error('Azurite ports did not answer in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The three "Azurite <Service> service is successfully listening at …:<port>" lines. */
async function listeningPorts(child: ManagedChild, timeoutMs: number): Promise<AzuritePorts> {
  const wait = (service: string) =>
    child
      .waitForLine(
        new RegExp(`Azurite ${service} service is successfully listening at https?://\\S+:(\\d+)`),
        timeoutMs,
      )
      .then(Number);
  const [blob, queue, table] = await Promise.all([wait('Blob'), wait('Queue'), wait('Table')]);
  return { blob, queue, table };
}

/** Starts Azurite; always stop `child` (also when `ready` rejects). */
export function launchAzurite(
  options: AzuriteOptions,
  childOptions: StartChildOptions = {},
): AzuriteProcess {
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const child = startChild(
    'azurite',
    process.execPath,
    [...watchedNodeArgs(), ...azuriteArgs(options)],
    { ...childOptions, cwd: options.cwd ?? options.location },
  );
  const deadline = Date.now() + timeoutMs;
  const ready = listeningPorts(child, timeoutMs).then(async (ports) => {
    await waitUntilPortsAnswer(ports, deadline);
    return ports;
  });
  return { child, ready };
}
