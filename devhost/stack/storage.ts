/**
 * The stack's storage (`AzureWebJobsStorage`): the account the user already set, else an Azurite
 * already answering on the Azurite ports (VS Code's Azurite extension starts one on 10000–10002),
 * else the stack's own Azurite in the data folder.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AzuritePorts } from './azurite';
import { azuriteEndpoints, launchAzurite } from './azurite';
import type { ManagedChild, StartChildOptions } from './child-process';

export type { AzuritePorts };

/** Azurite's standard ports (what `UseDevelopmentStorage=true` means). */
export const standardAzuritePorts: AzuritePorts = { blob: 10000, queue: 10001, table: 10002 };

export interface Storage {
  connectionString: string;
  /** Says which storage the app uses, for the stack's output. */
  description: string;
  /** The stack's own Azurite; undefined when an existing service is used. */
  child?: ManagedChild;
  /** Resolves once the stack's own Azurite listens (at once for an existing service). */
  ready: Promise<void>;
}

export function azuriteConnectionString(ports: AzuritePorts): string {
  return azuriteEndpoints(ports).connectionString;
}

/** `LOCAL_AZURITE_PORTS=blob,queue,table`, or undefined when unset. */
export function parseAzuritePorts(value: string | undefined): AzuritePorts | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const ports = value.split(',').map((part) => Number(part.trim()));
  if (ports.length !== 3 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new Error(
      `LOCAL_AZURITE_PORTS must be three ports, blob,queue,table (e.g. 10000,10001,10002); got "${value}"`,
    );
  }
  const [blob, queue, table] = ports as [number, number, number];
  return { blob, queue, table };
}

/** What answers on a port: a storage service (by its `Server` header), something else, nothing. */
async function probe(port: number): Promise<'storage' | 'other' | 'none'> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`, {
      signal: AbortSignal.timeout(2_000),
    });
    await response.arrayBuffer();
    const server = response.headers.get('server') ?? '';
    return /Azurite|Windows-Azure/i.test(server) ? 'storage' : 'other';
  } catch {
    return 'none';
  }
}

/**
 * Whether a storage emulator already answers on all of `ports`. Throws when it answers on only
 * some of them (the stack could neither use it nor start its own there).
 */
export async function existingAzurite(ports: AzuritePorts): Promise<boolean> {
  const found = await Promise.all(
    (['blob', 'queue', 'table'] as const).map(async (service) => ({
      service,
      port: ports[service],
      answer: await probe(ports[service]),
    })),
  );
  const storage = found.filter((f) => f.answer === 'storage');
  if (storage.length === 3) return true;
  if (storage.length === 0) return false;
  const list = (items: typeof found) => items.map((f) => `${f.service} ${f.port}`).join(', ');
  throw new Error(
    `an Azurite answers on ${list(storage)} but not on ${list(found.filter((f) => f.answer !== 'storage'))}; ` +
      'start it with all three services (blob, queue, table), stop it, or set AzureWebJobsStorage',
  );
}

/** The account a connection string names, for messages (never the key). */
function accountOf(connectionString: string): string {
  const account = /AccountName=([^;]+)/i.exec(connectionString)?.[1];
  const endpoint = /(?:Blob|Table)Endpoint=([^;]+)/i.exec(connectionString)?.[1];
  return account ?? endpoint ?? 'a connection string';
}

function startOwnAzurite(
  dataDir: string,
  ports: AzuritePorts | undefined,
  childOptions: StartChildOptions,
): Storage {
  const location = join(dataDir, 'azurite');
  mkdirSync(location, { recursive: true });
  const azurite = launchAzurite({ location, ports }, childOptions);
  const storage: Storage = {
    connectionString: '',
    description: `the stack's own Azurite (data in ${location})`,
    child: azurite.child,
    ready: azurite.ready.then((bound) => {
      storage.connectionString = azuriteConnectionString(bound);
    }),
  };
  return storage;
}

/**
 * Picks the storage as described at the top. `ports`: where to look for (and start) Azurite;
 * undefined means ephemeral ports for the stack's own Azurite and no look-up.
 */
export async function chooseStorage(
  env: NodeJS.ProcessEnv,
  dataDir: string,
  ports: AzuritePorts | undefined,
  childOptions: StartChildOptions,
): Promise<Storage> {
  const given = env.AzureWebJobsStorage?.trim();
  if (given && !/^UseDevelopmentStorage=true;?$/i.test(given)) {
    return {
      connectionString: given,
      description: `the AzureWebJobsStorage you set (${accountOf(given)}); no Azurite started`,
      ready: Promise.resolve(),
    };
  }
  if (ports && (await existingAzurite(ports))) {
    return {
      connectionString: azuriteConnectionString(ports),
      description: `the Azurite already running on ports ${ports.blob}, ${ports.queue}, ${ports.table} (its data stays where it keeps it); no Azurite started`,
      ready: Promise.resolve(),
    };
  }
  return startOwnAzurite(dataDir, ports, childOptions);
}
