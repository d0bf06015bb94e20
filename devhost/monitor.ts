/**
 * `npm run monitor -- [--device ID] [--properties] [--consumer-group NAME] [--from-start]`: prints
 * device-to-cloud messages as they arrive on the Event Hub-compatible endpoint, like
 * `az iot hub monitor-events`. It reads the connection from `IOTHUB_EVENTS_CONNECTION`, else from
 * the local hub's `$LOCAL_DATA_DIR/iothub/connection.json`, so it works against Azure too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ReceivedEventData } from '@azure/event-hubs';
import {
  EventHubConsumerClient,
  earliestEventPosition,
  latestEventPosition,
} from '@azure/event-hubs';
import { Command } from 'commander';
import { systemPropertiesOf } from './eventhub/convert';

/** The connection, and the consumer group to use unless one is given. */
export function eventsConnection(env: NodeJS.ProcessEnv): {
  connectionString: string;
  consumerGroup: string;
} {
  if (env.IOTHUB_EVENTS_CONNECTION) {
    return { connectionString: env.IOTHUB_EVENTS_CONNECTION, consumerGroup: '$Default' };
  }
  const file = join(resolve(env.LOCAL_DATA_DIR ?? '.local'), 'iothub', 'connection.json');
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { eventsConnectionString?: unknown };
    // The local stack adds a `monitor` group: $Default belongs to the app's trigger.
    if (typeof parsed.eventsConnectionString === 'string') {
      return { connectionString: parsed.eventsConnectionString, consumerGroup: 'monitor' };
    }
  }
  throw new Error(`set IOTHUB_EVENTS_CONNECTION or start the local stack (no ${file})`);
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

function main(): void {
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
    .opts<{ device?: string; properties: boolean; consumerGroup?: string; fromStart: boolean }>();
  let connection: { connectionString: string; consumerGroup: string };
  try {
    connection = eventsConnection(process.env);
  } catch (error) {
    console.error(`monitor: ${(error as Error).message}`);
    process.exit(1);
  }
  const client = new EventHubConsumerClient(
    opts.consumerGroup ?? connection.consumerGroup,
    connection.connectionString,
  );
  console.error(
    `Monitoring ${client.eventHubName}${opts.device ? ` for ${opts.device}` : ''}; Ctrl-C to stop.`,
  );
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
      processError: (error) => {
        console.error(`monitor: ${error.message}`);
        return Promise.resolve();
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
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  main();
}
