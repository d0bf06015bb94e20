/**
 * Starts a private, in-memory Azurite (blob + queue + table) for one test file or benchmark.
 *
 * Azurite is told to listen on port 0 and reports the ports it actually bound on stdout, so there
 * is no window in which another process could take a port we picked beforehand. We then wait
 * until every port accepts a TCP connection before handing out the connection string.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { odata, TableClient, type TableEntityResult } from '@azure/data-tables';
import { buildConnectionString } from '../../lib/connection-string';

/** Azurite's documented development account (public, like the emulator's well-known keys). */
export const devAccountName = 'devstoreaccount1';
export const devAccountKey =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteInstance {
  /** Standard devstoreaccount1 connection string with explicit loopback endpoints. */
  connectionString: string;
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
  ports: { blob: number; queue: number; table: number };
  /** Stops the process (idempotent); resolves once it has exited. */
  stop(): Promise<void>;
}

export interface StartAzuriteOptions {
  /** How long to wait for all three services to listen (default 30 s). */
  startTimeoutMs?: number;
}

const services = ['Blob', 'Queue', 'Table'] as const;
type Service = (typeof services)[number];

function azuriteEntry(): string {
  // The CLI entry starts all three services in one process.
  return require.resolve('azurite/dist/src/azurite.js');
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, 5000)) return;
  child.kill('SIGKILL');
  await waitForExit(child, 5000);
}

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

async function waitUntilPortsAnswer(ports: readonly number[], deadline: number): Promise<void> {
  for (;;) {
    const answers = await Promise.all(ports.map(portAnswers));
    if (answers.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error('Azurite ports did not answer in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Reads the three "successfully listening at http://127.0.0.1:<port>" lines Azurite prints. */
function waitForPorts(child: ChildProcess, timeoutMs: number): Promise<Record<Service, number>> {
  return new Promise((resolve, reject) => {
    const found: Partial<Record<Service, number>> = {};
    let output = '';
    const timer = setTimeout(
      () => finish(new Error(`Azurite did not start within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      for (const service of services) {
        const match = new RegExp(
          `Azurite ${service} service is successfully listening at https?://[^:\\s]+:(\\d+)`,
        ).exec(output);
        if (match?.[1]) found[service] = Number(match[1]);
      }
      if (services.every((s) => found[s] !== undefined)) {
        finish(undefined, found as Record<Service, number>);
      }
    };
    const onExit = (code: number | null): void =>
      finish(new Error(`Azurite exited with code ${String(code)} before listening:\n${output}`));
    function finish(error?: Error, ports?: Record<Service, number>): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else if (ports) resolve(ports);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

export function azuriteConnectionString(ports: { blob: number; queue: number; table: number }): {
  connectionString: string;
  blobEndpoint: string;
  queueEndpoint: string;
  tableEndpoint: string;
} {
  const blobEndpoint = `http://127.0.0.1:${ports.blob}/${devAccountName}`;
  const queueEndpoint = `http://127.0.0.1:${ports.queue}/${devAccountName}`;
  const tableEndpoint = `http://127.0.0.1:${ports.table}/${devAccountName}`;
  const connectionString = buildConnectionString({
    DefaultEndpointsProtocol: 'http',
    AccountName: devAccountName,
    AccountKey: devAccountKey,
    BlobEndpoint: blobEndpoint,
    QueueEndpoint: queueEndpoint,
    TableEndpoint: tableEndpoint,
  });
  return { connectionString, blobEndpoint, queueEndpoint, tableEndpoint };
}

/** Starts an in-memory Azurite on ephemeral loopback ports. Always call `stop()`. */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<AzuriteInstance> {
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  // In-memory mode forbids --location; the working directory only receives Azurite's
  // telemetry/settings scratch files, so give it a private one.
  const workDir = mkdtempSync(join(tmpdir(), 'azurite-'));
  const args = [
    azuriteEntry(),
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    '0',
    '--queueHost',
    '127.0.0.1',
    '--queuePort',
    '0',
    '--tableHost',
    '127.0.0.1',
    '--tablePort',
    '0',
    '--inMemoryPersistence',
    '--skipApiVersionCheck',
    '--loose',
    '--silent',
    '--disableTelemetry',
  ];
  const child = spawn(process.execPath, args, {
    cwd: workDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const cleanup = async (): Promise<void> => {
    await kill(child);
    rmSync(workDir, { recursive: true, force: true });
  };
  let found: Record<Service, number>;
  try {
    found = await waitForPorts(child, timeoutMs);
    await waitUntilPortsAnswer([found.Blob, found.Queue, found.Table], Date.now() + timeoutMs);
  } catch (error) {
    await cleanup();
    throw error;
  }
  // Keep draining output so a chatty child never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  const ports = { blob: found.Blob, queue: found.Queue, table: found.Table };
  let stopping: Promise<void> | undefined;
  return {
    ...azuriteConnectionString(ports),
    ports,
    stop: () => (stopping ??= cleanup()),
  };
}

export type StoredEntity = TableEntityResult<Record<string, unknown>>;

/** Every entity of `table` (in `partitionKey` when given); an absent table reads as empty. */
export async function tableEntities(
  connectionString: string,
  table: string,
  partitionKey?: string,
): Promise<StoredEntity[]> {
  const client = TableClient.fromConnectionString(connectionString, table, {
    allowInsecureConnection: true,
  });
  const out: StoredEntity[] = [];
  try {
    const entities = client.listEntities<Record<string, unknown>>(
      partitionKey === undefined
        ? {}
        : { queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` } },
    );
    for await (const entity of entities) out.push(entity);
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return [];
    throw error;
  }
  return out;
}
