/**
 * `node dist/devhost/cli.js --app <dir> [--port N] [--host ADDR] [--data DIR]`: runs a Functions
 * app under devhost until SIGINT/SIGTERM, then stops gracefully (in-flight invocations finish,
 * Event Hub checkpoints are written) and exits 0. Start-up problems exit 1 with a message that
 * names them.
 */
import { Command, InvalidArgumentError } from 'commander';
import { startHost } from './host';
import type { RunningHost } from './host';
import { createConsoleLog, parseLogLevel } from './log';

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

  let host: RunningHost;
  try {
    host = await startHost({
      appDir: opts.app,
      port: opts.port,
      hostname: opts.host,
      dataDir: opts.data,
      log,
    });
  } catch (error) {
    console.error(`devhost: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
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
