/**
 * `npm run monitor -- [--device ID] [--properties] [--consumer-group NAME] [--from-start]`: prints
 * device-to-cloud messages as they arrive on the Event Hub-compatible endpoint, like
 * `az iot hub monitor-events`. It reads the connection from `IOTHUB_EVENTS_CONNECTION`, else from
 * the local hub's `$LOCAL_DATA_DIR/iothub/connection.json`, so it works against Azure too.
 * Before it subscribes it checks that the endpoint answers, so a hub that is not running (or a
 * `connection.json` left from an earlier run) is a one-line error, not a silent wait. On a hub
 * started without the stack, which has no `monitor` consumer group, it reads with `$Default`.
 */
import type { ReceivedEventData } from '@azure/event-hubs';
import {
  EventHubConsumerClient,
  earliestEventPosition,
  latestEventPosition,
} from '@azure/event-hubs';
import { Command } from 'commander';
import { parseEventHubConnectionString } from '../../lib/connection-string';
import { describeError } from '../../lib/http/redact';
import { systemPropertiesOf } from '../host/eventhub/convert';
import { checkReachable, defaultConnectionFile, readLocalHubFile } from './local-hub';

export interface EventsTarget {
  connectionString: string;
  consumerGroup: string;
  /** The local hub's connection.json, when the connection came from there. */
  file?: string;
}

/** The connection, and the consumer group to use unless one is given. */
export function eventsConnection(env: NodeJS.ProcessEnv): EventsTarget {
  if (env.IOTHUB_EVENTS_CONNECTION) {
    return { connectionString: env.IOTHUB_EVENTS_CONNECTION, consumerGroup: '$Default' };
  }
  const hub = readLocalHubFile(defaultConnectionFile(env), 'IOTHUB_EVENTS_CONNECTION');
  // The local stack adds a `monitor` group: $Default belongs to the app's trigger.
  return { connectionString: hub.eventsConnectionString, consumerGroup: 'monitor', file: hub.file };
}

/** True for the error Event Hubs sends for a consumer group (or hub) that does not exist. */
export function isEntityNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'MessagingEntityNotFoundError' || code === 'amqp:not-found';
}

function decodeBody(body: unknown): unknown {
  const bytes = Buffer.isBuffer(body)
    ? body
    : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body ?? null));
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Text that survives a UTF-8 round trip is shown as text, anything else as base64.
    return Buffer.from(text, 'utf8').equals(bytes) ? text : { base64: bytes.toString('base64') };
  }
}

export function formatEvent(
  event: ReceivedEventData,
  withProperties: boolean,
): Record<string, unknown> {
  const system = systemPropertiesOf(event);
  const out: Record<string, unknown> = {
    event: {
      origin: system['iothub-connection-device-id'] ?? null,
      module: system['iothub-connection-module-id'] ?? '',
      payload: decodeBody(event.body),
    },
  };
  if (withProperties) {
    // Show what the hub sent, not the extra fields the Functions host adds for bindings.
    const {
      SequenceNumber: _s,
      Offset: _o,
      PartitionKey: _p,
      EnqueuedTimeUtc: _e,
      ...annotations
    } = system;
    (out.event as Record<string, unknown>).annotations = annotations;
    (out.event as Record<string, unknown>).properties = { application: event.properties ?? {} };
  }
  return out;
}

interface MonitorOptions {
  device?: string;
  properties: boolean;
  consumerGroup?: string;
  fromStart: boolean;
}

/** Prints each event of `group` until stopped; a missing `monitor` group falls back once. */
function subscribe(target: EventsTarget, group: string, opts: MonitorOptions): void {
  const client = new EventHubConsumerClient(group, target.connectionString, {
    // Reachability was checked; a refusal now is an answer, not a blip to retry for minutes.
    retryOptions: { maxRetries: 1, retryDelayInMs: 500 },
  });
  let switching = false;
  const subscription = client.subscribe(
    {
      processEvents: (events) => {
        for (const event of events) {
          const formatted = formatEvent(event, opts.properties);
          const origin = (formatted.event as { origin: unknown }).origin;
          if (opts.device && origin !== opts.device) continue;
          console.log(JSON.stringify(formatted, null, 2));
        }
        return Promise.resolve();
      },
      processError: async (error) => {
        // A hub started without the stack (npm run emulator) has only $Default.
        if (isEntityNotFound(error) && group === 'monitor' && !opts.consumerGroup && !switching) {
          switching = true;
          console.error(
            'monitor: this hub has no consumer group "monitor" (it was not started by npm start); reading with $Default',
          );
          await subscription.close();
          await client.close();
          subscribe(target, '$Default', opts);
          return;
        }
        if (!switching) console.error(`monitor: ${describeError(error)}`);
      },
    },
    {
      startPosition: opts.fromStart ? earliestEventPosition : latestEventPosition,
      skipParsingBodyAsJson: true,
    },
  );
  const stop = () => {
    void subscription
      .close()
      .then(() => client.close())
      .finally(() => process.exit(0));
  };
  process.removeAllListeners('SIGINT').removeAllListeners('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

async function main(): Promise<void> {
  const opts = new Command()
    .name('monitor')
    .description('Prints device-to-cloud messages as they arrive.')
    .option('--device <id>', 'only this device')
    .option('--properties', 'also print system and application properties', false)
    .option(
      '--consumer-group <name>',
      'consumer group (default: monitor on the local hub, else $Default)',
    )
    .option('--from-start', 'read retained messages first, not only new ones', false)
    .parse()
    .opts<MonitorOptions>();
  let target: EventsTarget;
  let name: string;
  try {
    target = eventsConnection(process.env);
    name = parseEventHubConnectionString(target.connectionString).entityPath;
    await checkReachable(target.connectionString, 'Event Hub-compatible endpoint', target.file);
  } catch (error) {
    // The parser's and the probe's messages describe shapes and hosts, never keys.
    console.error(`monitor: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
  console.error(`Monitoring ${name}${opts.device ? ` for ${opts.device}` : ''}; Ctrl-C to stop.`);
  subscribe(target, opts.consumerGroup ?? target.consumerGroup, opts);
}

if (require.main === module) {
  void main();
}
