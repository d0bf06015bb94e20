/**
 * `npm run simulate -- --devices N --interval 1s --duration 60s`: the simulator's fleet as a load
 * generator. It targets IOTHUB_CONNECTION_STRING when set (any hub, Azure included), else the
 * local IoT Hub described by `--connection-file` (default `$LOCAL_DATA_DIR/iothub/connection.json`,
 * `LOCAL_DATA_DIR` defaulting to `.local`, as `npm start` and `npm run emulator` write it), whose
 * CA it trusts by restarting itself with a bundle. It checks that the hub answers before it
 * starts (a hub that is not running, or a stale `connection.json`, is a one-line error), and it
 * creates missing device identities on a hub of the user's only when asked (`--provision` or
 * `SIMULATOR_AUTO_PROVISION=true`); on the local hub it creates them unless `--no-provision`.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { checkReachable, readLocalHubFile } from '../../devhost/stack/local-hub';
import { namesLocalService } from '../../devhost/stack/settings';
import { processTrusts, writeCaBundle } from '@iot-hub-functions/local-iothub';
import { registryFromSettings } from '../../lib/iothub/clients';
import { parseIotHubConnectionString } from '../../lib/connection-string';
import { DeviceFleet, fleetDeviceIds } from '../../lib/simulator/fleet';

/** `500ms`, `1s`, `2m`, `1h`, or a bare number of seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError('expected a duration such as 500ms, 1s, 2m or 1h');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's'] ?? 1000;
  return Math.round(Number(match[1]) * unit);
}

function positiveInt(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new InvalidArgumentError('expected a whole number ≥ 1');
  return Number(text);
}

interface Options {
  devices: number;
  interval: number;
  duration: number;
  prefix: string;
  connectRate: number;
  /** `--provision` / `--no-provision`; undefined when neither was given. */
  provision?: boolean;
  connectionFile: string;
}

interface Target {
  connectionString: string;
  caFile?: string;
  /** The local hub's connection.json it came from. */
  file?: string;
}

function hubConnectionString(options: Options): Target {
  const fromEnv = process.env.IOTHUB_CONNECTION_STRING?.trim();
  if (fromEnv) return { connectionString: fromEnv };
  const hub = readLocalHubFile(resolve(options.connectionFile), 'IOTHUB_CONNECTION_STRING');
  return {
    connectionString: hub.serviceConnectionString,
    file: hub.file,
    ...(hub.caFile ? { caFile: hub.caFile } : {}),
  };
}

/**
 * Whether to create missing identities: the flag if given, else `SIMULATOR_AUTO_PROVISION`, else
 * only on the local hub (its well-known keys), never unasked on someone's real hub.
 */
export function shouldProvision(
  flag: boolean | undefined,
  env: NodeJS.ProcessEnv,
  connectionString: string,
): boolean {
  if (flag !== undefined) return flag;
  const setting = env.SIMULATOR_AUTO_PROVISION?.trim().toLowerCase();
  if (setting !== undefined && setting !== '') return setting === 'true' || setting === '1';
  return namesLocalService(connectionString);
}

/** Restarts this process trusting `caFile`; resolves with the child's exit code. */
function restartTrusting(caFile: string, bundleDir: string): Promise<number> {
  const bundle = writeCaBundle(caFile, join(bundleDir, 'ca-bundle.pem'));
  const child = spawn(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: bundle },
  });
  process.on('SIGINT', () => child.kill('SIGINT'));
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  return new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
}

async function run(options: Options): Promise<number> {
  const target = hubConnectionString(options);
  await checkReachable(target.connectionString, 'IoT Hub', target.file);
  if (target.caFile && !processTrusts(target.caFile)) {
    return restartTrusting(target.caFile, dirname(resolve(options.connectionFile)));
  }
  const hub = parseIotHubConnectionString(target.connectionString);
  const fleet = new DeviceFleet({
    hubHostName: hub.hostName,
    deviceIds: fleetDeviceIds(options.prefix, options.devices),
    registry: registryFromSettings({
      kind: 'connectionString',
      connectionString: target.connectionString,
      hostName: hub.hostName,
    }),
    autoProvision: shouldProvision(options.provision, process.env, target.connectionString),
    connectsPerSecond: options.connectRate,
    log: (line) => console.log(line),
    backoff: { initialMs: 500, maxMs: 30_000 },
    defaultIntervalSeconds: options.interval / 1000,
  });

  const started = Date.now();
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const progress = () => {
    const s = fleet.stats();
    const seconds = (Date.now() - started) / 1000;
    console.log(
      `[${seconds.toFixed(0)}s] ${s.connected}/${s.devices} connected, ${s.sent} sent, ${s.acknowledged} acknowledged (${(s.acknowledged / Math.max(seconds, 0.001)).toFixed(1)}/s), ${s.c2dReceived} C2D received, ${s.errors} errors`,
    );
  };
  const ticker = setInterval(progress, 5000);

  console.log(
    `simulating ${options.devices} devices on ${hub.hostName}, one message each per ${options.interval} ms`,
  );
  const connectStart = Date.now();
  await fleet.connect();
  console.log(
    `${fleet.stats().connected}/${options.devices} devices connected in ${Date.now() - connectStart} ms`,
  );
  // Ticks are finer than the interval so that an interval a twin or a method sets is kept to
  // within a quarter second; each device still sends only when its own interval is due.
  const tickMs = Math.min(options.interval, 250);
  while (!stopping && (options.duration === 0 || Date.now() - started < options.duration)) {
    const tickStart = Date.now();
    await fleet.tick();
    const wait = tickMs - (Date.now() - tickStart);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  clearInterval(ticker);
  progress();
  await fleet.close();
  return fleet.stats().acknowledged > 0 || options.devices === 0 ? 0 : 1;
}

const program = new Command('simulate')
  .description('Run a fleet of simulated devices sending the tutorial telemetry over MQTT')
  .option('--devices <n>', 'number of devices', positiveInt, 10)
  .option('--interval <duration>', 'time between messages from each device', parseDuration, 1000)
  .option('--duration <duration>', 'how long to run (0 = until Ctrl-C)', parseDuration, 60_000)
  .option('--prefix <prefix>', 'device id prefix (<prefix>-1 …)', 'load')
  .option('--connect-rate <n>', 'new connections per second', positiveInt, 100)
  .option('--provision', 'create missing device identities (default only on the local hub)')
  .option('--no-provision', 'do not create missing device identities')
  .option(
    '--connection-file <path>',
    'local IoT Hub connection file',
    join(process.env.LOCAL_DATA_DIR ?? '.local', 'iothub', 'connection.json'),
  );

if (require.main === module) {
  program.parse();
  run(program.opts<Options>()).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`simulate: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
