#!/usr/bin/env node
/**
 * `local-iothub [--data DIR] [--in-memory] [--host 127.0.0.1] [--port N] [--mqtt-port N]
 * [--amqp-port N] [--events-port N] [--partitions N] [--trusted-device-ca FILE] [--manual-clock]…`
 * (the package's bin; `node emulator/dist/cli.js` in this repository) — the contract tests and
 * tooling depend on. Once every listener is up it writes `DIR/connection.json` and prints the same
 * details. SIGINT/SIGTERM stop it cleanly (flush, exit 0); a busy port or an unusable data folder
 * exits 1 with a message naming it; bad arguments exit 2. The data folder is locked (`DIR/lock.json`)
 * before anything in it is read or written: a second hub on the same folder exits 1 at once, names
 * the running one and changes nothing.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { loadTrustedCas } from './auth/x509';
import { defaultPorts } from './config';
import type { ConnectionInfo } from './connection-info';
import { startControlEndpoint } from './control';
import { FakeClock } from './core/clock';
import type { DataLock } from './data-lock';
import { acquireDataLock, DataLockedError } from './data-lock';
import { readIdentityFile } from './identity-file';
import { createConsoleLogger } from './log';
import type { RunningServer, ServerOptions } from './server';
import { publicHost, startServer, StartupError, writeConnectionFile } from './server';

/** The server, and the control endpoint beside it when the clock is manual. */
interface RunningHub extends Pick<RunningServer, 'close'> {
  connection: ConnectionInfo;
}

async function startHub(options: ServerOptions, clock: FakeClock | undefined): Promise<RunningHub> {
  const server = await startServer(options);
  if (!clock) return server;
  let control;
  try {
    control = await startControlEndpoint(clock);
  } catch (error) {
    await server.close();
    throw new StartupError(`cannot open the clock control endpoint: ${String(error)}`);
  }
  const endpoint = control;
  return {
    connection: { ...server.connection, control: { url: endpoint.url } },
    close: async () => {
      await endpoint.close();
      await server.close();
    },
  };
}

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    }
    return n;
  };
}

const port = integer('a port', 0, 65535);
/** The standard extra ports may be switched off with -1. */
const optionalPort = integer('a port (or -1 to not serve it)', -1, 65535);

interface CliOptions {
  data: string;
  inMemory: boolean;
  host: string;
  port: number;
  mqttPort: number;
  amqpPort: number;
  eventsPort: number;
  partitions: number;
  consumerGroup: string[];
  feedbackDelayMs?: number;
  retentionMs?: number;
  c2dTtlMs?: number;
  d2cSyncIntervalMs?: number;
  handshakeTimeoutMs?: number;
  identity?: string;
  trustedDeviceCa: string[];
  manualClock: boolean;
}

/** Where the hub keeps its data and where it listens. */
function addPlacementOptions(program: Command): Command {
  return program
    .option('--data <dir>', 'data folder (TLS material, connection.json, state)', '.local/iothub')
    .option(
      '--in-memory',
      'keep hub state in memory only (TLS and connection.json still in --data)',
      false,
    )
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--port <n>',
      'TLS gateway port: HTTPS, AMQPS and MQTTS (0 = ephemeral)',
      port,
      defaultPorts.gateway,
    )
    .option(
      '--mqtt-port <n>',
      'standard MQTTS port (0 = ephemeral, -1 = off)',
      optionalPort,
      defaultPorts.mqtt,
    )
    .option(
      '--amqp-port <n>',
      'standard AMQPS port (0 = ephemeral, -1 = off)',
      optionalPort,
      defaultPorts.amqp,
    )
    .option(
      '--events-port <n>',
      'Event Hub-compatible endpoint, plain AMQP (0 = ephemeral)',
      port,
      defaultPorts.events,
    );
}

const repeatable = (value: string, previous: string[]) => [...previous, value];

/** What the hub is: its identity, endpoint shape, trusted device CAs. */
function addHubOptions(program: Command): Command {
  return program
    .option(
      '--partitions <n>',
      'partitions of the Event Hub-compatible endpoint',
      integer('partitions', 1, 32),
      4,
    )
    .option(
      '--consumer-group <name>',
      'an extra consumer group besides $Default (repeatable)',
      repeatable,
      [] as string[],
    )
    .option(
      '--trusted-device-ca <file>',
      'PEM CA certificate that signs the certificates of certificateAuthority devices (repeatable)',
      repeatable,
      [] as string[],
    )
    .option(
      '--identity <file>',
      'JSON file with the hub name and shared access policies (default: the well-known ones)',
    );
}

/** How the hub behaves in time. */
function addTimingOptions(program: Command): Command {
  return program
    .addOption(
      new Option(
        '--feedback-delay-ms <ms>',
        'close a partial C2D feedback batch after this long',
      ).argParser(integer('feedback delay', 0, 3_600_000)),
    )
    .addOption(
      new Option('--retention-ms <ms>', 'how long telemetry is kept (default 1 day)').argParser(
        integer('retention', 1000, 7 * 24 * 3_600_000),
      ),
    )
    .addOption(
      new Option(
        '--c2d-ttl-ms <ms>',
        'default time to live of C2D messages (default 1 hour)',
      ).argParser(integer('C2D TTL', 1000, 48 * 3_600_000)),
    )
    .addOption(
      new Option(
        '--d2c-sync-interval-ms <ms>',
        'fdatasync telemetry in the background this often; a PUBACK then means written to the OS, which survives a crash or kill of the hub (0 = fdatasync before every PUBACK; default 100)',
      ).argParser(integer('sync interval', 0, 10_000)),
    )
    .option(
      '--manual-clock',
      'time stands still until moved through the loopback control endpoint (tests; see connection.json control.url)',
      false,
    )
    .addOption(
      new Option(
        '--handshake-timeout-ms <ms>',
        'drop peers that do not identify their protocol in time',
      )
        .argParser(integer('handshake timeout', 100, 600_000))
        .hideHelp(),
    );
}

function parseArguments(argv: string[]): CliOptions {
  const program = new Command('local-iothub').description(
    'A local Azure IoT Hub for development and tests (not for production).',
  );
  addTimingOptions(addHubOptions(addPlacementOptions(program)))
    .exitOverride((error) => {
      process.exit(error.exitCode === 0 ? 0 : 2);
    })
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  program.parse(argv);
  return program.opts<CliOptions>();
}

function toServerOptions(cli: CliOptions, clock: FakeClock | undefined): ServerOptions {
  const core: NonNullable<ServerOptions['core']> = {
    ...(clock ? { clock } : {}),
    ...(cli.feedbackDelayMs !== undefined ? { feedbackBatchDelayMs: cli.feedbackDelayMs } : {}),
    ...(cli.retentionMs !== undefined ? { retentionMs: cli.retentionMs } : {}),
    ...(cli.c2dTtlMs !== undefined ? { defaultC2DTtlMs: cli.c2dTtlMs } : {}),
    ...(cli.d2cSyncIntervalMs !== undefined ? { d2cSyncIntervalMs: cli.d2cSyncIntervalMs } : {}),
  };
  return {
    dataDir: path.resolve(cli.data),
    inMemory: cli.inMemory,
    host: cli.host,
    ports: { gateway: cli.port, mqtt: cli.mqttPort, amqp: cli.amqpPort, events: cli.eventsPort },
    partitions: cli.partitions,
    consumerGroups: cli.consumerGroup,
    core,
    ...(cli.handshakeTimeoutMs !== undefined ? { handshakeTimeoutMs: cli.handshakeTimeoutMs } : {}),
    ...(cli.identity !== undefined ? { identity: readIdentityFile(cli.identity) } : {}),
    trustedDeviceCas: loadTrustedCas(cli.trustedDeviceCa),
    log: createConsoleLogger(),
  };
}

/** The data folder's lock, held until the process exits (a crash leaves a stale one, taken over). */
function lockDataFolder(dataDir: string): DataLock {
  try {
    const lock = acquireDataLock(dataDir, 'lock.json', { owner: 'a local IoT Hub' });
    process.on('exit', () => lock.release());
    return lock;
  } catch (error) {
    if (error instanceof DataLockedError) {
      throw new StartupError(`${error.message}; stop it, or give this one another --data folder`);
    }
    const why = error instanceof Error ? error.message : String(error);
    throw new StartupError(`data folder ${dataDir} is not usable: ${why}`);
  }
}

async function main(): Promise<void> {
  const cli = parseArguments(process.argv);
  // A manual clock starts at the wall clock's time, so timestamps and SAS expiries still make sense.
  const clock = cli.manualClock ? new FakeClock(Date.now()) : undefined;
  const options = toServerOptions(cli, clock);
  const log = options.log;
  const lock = lockDataFolder(options.dataDir);

  const running: { server?: RunningHub } = {};
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: shutting down`);
    const watchdog = setTimeout(() => {
      log.error('shutdown took longer than 15 s; exiting');
      process.exit(1);
    }, 15_000);
    watchdog.unref();
    // Still starting: main() closes what it started as soon as start-up finishes.
    if (!running.server) return;
    void running.server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  const server = await startHub(options, clock);
  running.server = server;
  if (stopping) {
    // A signal arrived while starting: close what was just started, then exit.
    await server.close();
    process.exit(0);
  }
  const file = await writeConnectionFile(options.dataDir, server.connection);
  lock.update({ url: `https://${publicHost(options.host)}:${server.connection.ports.gateway}` });
  process.stdout.write(`${JSON.stringify(server.connection, null, 2)}\n`);
  process.stdout.write(
    `Local IoT Hub ready (${options.inMemory ? 'in memory' : `state in ${path.join(options.dataDir, 'state')}`}); details in ${file}.\n` +
      `Trust its CA: export NODE_EXTRA_CA_CERTS=<a bundle with your existing CAs plus ${server.connection.caFile}> ` +
      `(e.g. cat "\${NODE_EXTRA_CA_CERTS:-/dev/null}" ${server.connection.caFile} > ca-bundle.pem).\n`,
  );
}

main().catch((error: unknown) => {
  const message =
    error instanceof StartupError
      ? error.message
      : `failed to start: ${error instanceof Error ? error.message : String(error)}`;
  process.stderr.write(`local-iothub: ${message}\n`);
  process.exit(1);
});
