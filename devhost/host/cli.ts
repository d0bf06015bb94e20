/**
 * `node dist/devhost/host/cli.js --app <dir> [--port N] [--host ADDR] [--data DIR]`: runs a Functions
 * app under devhost until SIGINT/SIGTERM, then stops gracefully (in-flight invocations finish,
 * Event Hub checkpoints are written) and exits 0. Start-up problems exit 1 with a message that
 * names them. The data folder is locked (`DIR/lock.json`) first: a second devhost on it exits 1.
 */
import { Command, InvalidArgumentError } from 'commander';
import { join, resolve } from 'node:path';
import type { DataLock } from '@iot-hub-functions/local-iothub';
import { acquireDataLock, DataLockedError } from '@iot-hub-functions/local-iothub';
import { applySettings, readLocalSettings } from './app-config';
import { startHost } from './host';
import type { RunningHost } from './host';
import { createConsoleLog, flushStdout, parseLogLevel } from './log';

/**
 * The one write to `process.env` in devhost, at the start of the process that runs the app: the
 * app reads its settings from its environment, as under the Functions host, whose worker process
 * is started with them. `local.settings.json` values go in where the environment has none (the
 * environment wins, as with Core Tools); the host itself only reads (`hostSettings`).
 */
function exposeLocalSettings(appDir: string): void {
  applySettings(readLocalSettings(resolve(appDir)), process.env);
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number (0-65535)');
  return n;
}

export function describeHost(host: RunningHost): string[] {
  const lines = [`Host started: ${host.url}`, '', 'Functions:'];
  for (const fn of host.functions) {
    if (fn.http)
      lines.push(
        `  ${fn.name}: [${fn.http.methods.join(',')}] ${fn.http.url} (${fn.http.authLevel})`,
      );
    else lines.push(`  ${fn.name}: ${fn.trigger}`);
  }
  lines.push('', `Function key (x-functions-key header or ?code=): ${host.key}`);
  return lines;
}

/** devhost's lock on its data folder, or exit 1 naming the process that holds it. */
function lockDataFolder(dataDir: string): DataLock {
  try {
    const lock = acquireDataLock(dataDir, 'lock.json', { owner: 'devhost' });
    process.on('exit', () => lock.release());
    return lock;
  } catch (error) {
    if (!(error instanceof DataLockedError)) throw error;
    console.error(`devhost: ${error.message}; stop it, or give this one another --data folder`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const program = new Command()
    .name('devhost')
    .description(
      'Runs an Azure Functions (Node.js v4) app locally through the real @azure/functions library.',
    )
    .option('--app <dir>', 'function app folder', process.cwd())
    .option('--port <n>', 'HTTP port (default: PORT or 7071; 0 = any free port)', portNumber)
    .option('--host <address>', 'interface to listen on', '127.0.0.1')
    .option(
      '--data <dir>',
      'data folder for keys and timer status (default: $LOCAL_DATA_DIR/devhost)',
    )
    .option(
      '--log-level <level>',
      'minimum log level (trace, debug, information, warning, error)',
      'information',
    );
  program.parse();
  const opts = program.opts<{
    app: string;
    port?: number;
    host: string;
    data?: string;
    logLevel: string;
  }>();
  const log = createConsoleLog(parseLogLevel(opts.logLevel));
  const dataDir = resolve(opts.data ?? join(process.env.LOCAL_DATA_DIR ?? '.local', 'devhost'));
  const lock = lockDataFolder(dataDir);

  let host: RunningHost;
  try {
    exposeLocalSettings(opts.app);
    host = await startHost({
      appDir: opts.app,
      port: opts.port,
      hostname: opts.host,
      dataDir,
      log,
    });
  } catch (error) {
    console.error(`devhost: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  lock.update({ url: host.url });
  flushStdout();
  console.log(describeHost(host).join('\n'));

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      console.error(`devhost: ${signal} again; exiting without waiting`);
      process.exit(1);
    }
    log.info(`${signal} received; stopping (finishing in-flight invocations)`);
    host
      .stop()
      .then(() => {
        log.info('devhost stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        console.error(
          `devhost: stopping failed: ${error instanceof Error ? error.message : String(error)}`,
        );
        process.exit(1);
      });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

if (require.main === module) {
  void main();
}
