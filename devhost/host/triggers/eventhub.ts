/**
 * Event Hub triggers: a consumer per function (`eventhub/listener.ts`) on the connection the
 * binding names, with checkpoints in `AzureWebJobsStorage`, as the host's extension does.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cardinality } from '../eventhub/convert';
import type { EventHubTriggerConfig } from '../eventhub/listener';
import { EventHubListener } from '../eventhub/listener';
import { HostStartError } from '../load-app';
import { toRetryPolicy } from '../retry';
import type { TriggerContext, TriggeredFunction, TriggerProvider } from './provider';
import { resolveSetting, text } from './provider';

/** One owner id per data folder, so a restarted host takes its partitions back at once. */
function readOrCreateOwnerId(dataDir: string): string {
  const file = join(dataDir, 'eventhub-owner-id');
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id;
  }
  const id = `devhost-${randomUUID()}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${id}\n`);
  return id;
}

function required(value: string | undefined, problem: string): string {
  if (!value) throw new HostStartError(problem);
  return value;
}

/** The binding as the listener takes it; every problem names the function and the setting. */
function triggerConfig(
  { fn, name, triggerName, binding }: TriggeredFunction,
  context: TriggerContext,
  connectionString: string,
): EventHubTriggerConfig {
  const cardinality = text(binding.cardinality, 'many').toLowerCase() as Cardinality;
  if (cardinality !== 'many' && cardinality !== 'one') {
    throw new HostStartError(`function "${name}": cardinality must be "many" or "one"`);
  }
  const eventHubName = typeof binding.eventHubName === 'string' ? binding.eventHubName : undefined;
  const consumerGroup = text(binding.consumerGroup, '$Default');
  return {
    fn,
    triggerName,
    connectionString,
    connectionSettingName: text(binding.connection, ''),
    eventHubName: eventHubName
      ? resolveSetting(context, eventHubName, `function "${name}" eventHubName`)
      : undefined,
    consumerGroup: resolveSetting(context, consumerGroup, `function "${name}" consumerGroup`),
    cardinality,
    dataType:
      binding.dataType === 'string' || binding.dataType === 'binary' ? binding.dataType : undefined,
    retry: toRetryPolicy(fn.metadata.retryOptions, name),
  };
}

export const eventHubTrigger: TriggerProvider = {
  handles: (type) => type.toLowerCase() === 'eventhubtrigger',
  build(target, context) {
    const connectionName = text(target.binding.connection, '');
    const connectionString = required(
      connectionName ? context.settings[connectionName] : undefined,
      `function "${target.name}": the Event Hub connection setting "${connectionName}" is not set`,
    );
    const storage = required(
      context.settings.AzureWebJobsStorage,
      `function "${target.name}": AzureWebJobsStorage is not set (checkpoints)`,
    );
    const trigger = triggerConfig(target, context, connectionString);
    context.runtime.listeners.push(
      new EventHubListener({
        trigger,
        hostOptions: context.hostConfig.eventHubs,
        storageConnectionString: storage,
        ownerId: readOrCreateOwnerId(context.dataDir),
        loadBalancingIntervalMs: context.loadBalancingIntervalMs,
        log: context.runtime.log,
        invoke: context.runtime.invoke,
      }),
    );
    return { name: target.name, trigger: 'eventHub' };
  },
};
