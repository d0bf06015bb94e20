/**
 * Twin and direct-method traffic of MQTT devices, on top of the core's twins and methods:
 * - `$iothub/twin/GET/?$rid=` → `$iothub/twin/res/200/?$rid=` with `{desired, reported}`;
 * - a reported patch → `$iothub/twin/res/204/?$rid=…&$version=…` once it is durable (400 for a
 *   patch that breaks the twin rules, 413 over the size limit);
 * - desired changes pushed on `$iothub/twin/PATCH/properties/desired/?$version=…` to the
 *   connection that subscribed `$iothub/twin/PATCH/properties/desired/#`;
 * - method calls delivered on `$iothub/methods/POST/{name}/?$rid=…` to the connection that
 *   subscribed `$iothub/methods/POST/#`, answered on `$iothub/methods/res/{status}/?$rid=…`.
 * The adapter hands over publishes, subscriptions and disconnects; this module keeps who listens.
 */
import type { Client } from 'aedes';
import type { Logger } from '../context';
import type { IotHubCore, MethodRequest } from '../core/contracts';
import { HubError } from '../core/contracts';
import { describe, quote } from './device-session';
import type { PublishTarget } from './topics';

export const desiredTopicFilter = '$iothub/twin/PATCH/properties/desired/#';
export const methodsTopicFilter = '$iothub/methods/POST/#';

export interface TwinMethodOptions {
  core: IotHubCore;
  log: Logger;
  /** Publishes at QoS 0 to this connection only. */
  publish(client: Client, topic: string, payload: Buffer): void;
  /** Keeps shutdown waiting for work still being written. */
  track(work: Promise<void>): void;
}

type TwinOrMethodTarget = Extract<
  PublishTarget,
  { kind: 'twin-get' | 'twin-patch-reported' | 'method-response' }
>;

/** The twin error status a device sees for a refused reported patch. */
function twinStatusOf(error: unknown): number {
  if (error instanceof HubError) {
    if (error.code === 'ArgumentInvalid') return 400;
    if (error.code === 'MessageTooLarge') return 413;
    if (error.code === 'DeviceNotFound') return 404;
  }
  return 500;
}

function json(value: unknown): Buffer {
  return Buffer.from(value === undefined ? '' : JSON.stringify(value), 'utf8');
}

export class TwinMethodHandler {
  /** The connection each device receives desired-property changes on. */
  private readonly desiredSubscribers = new Map<string, Client>();
  /** Each connection's method listener removal. */
  private readonly methodListeners = new Map<Client, () => void>();
  private readonly stopDesired: () => void;

  constructor(private readonly options: TwinMethodOptions) {
    this.stopDesired = options.core.twins.onDesiredChanged((deviceId, patch) =>
      this.pushDesired(deviceId, patch),
    );
  }

  handlePublish(
    client: Client,
    deviceId: string,
    target: TwinOrMethodTarget,
    payload: Buffer,
  ): void {
    this.options.core.registry.recordActivity(deviceId);
    switch (target.kind) {
      case 'twin-get':
        this.answerGet(client, deviceId, target.requestId);
        return;
      case 'twin-patch-reported':
        this.applyReported(client, deviceId, target.requestId, payload);
        return;
      case 'method-response':
        if (
          !this.options.core.methods.respond(deviceId, target.requestId, target.status, payload)
        ) {
          this.options.log.info(
            `device ${quote(deviceId)}: ignored a method response for unknown or expired request ${quote(target.requestId)}`,
          );
        }
        return;
    }
  }

  onSubscribe(client: Client, deviceId: string, topics: readonly string[]): void {
    if (topics.includes(desiredTopicFilter)) this.desiredSubscribers.set(deviceId, client);
    if (topics.includes(methodsTopicFilter) && !this.methodListeners.has(client)) {
      const stop = this.options.core.methods.listen(deviceId, (request) =>
        this.deliverMethod(client, request),
      );
      this.methodListeners.set(client, stop);
    }
  }

  onUnsubscribe(client: Client, deviceId: string, topics: readonly string[]): void {
    if (topics.includes(desiredTopicFilter) && this.desiredSubscribers.get(deviceId) === client) {
      this.desiredSubscribers.delete(deviceId);
    }
    if (topics.includes(methodsTopicFilter)) this.stopMethods(client);
  }

  onDisconnect(client: Client, deviceId: string): void {
    if (this.desiredSubscribers.get(deviceId) === client) this.desiredSubscribers.delete(deviceId);
    this.stopMethods(client);
  }

  close(): void {
    this.stopDesired();
    for (const stop of this.methodListeners.values()) stop();
    this.methodListeners.clear();
    this.desiredSubscribers.clear();
  }

  private answerGet(client: Client, deviceId: string, requestId: string): void {
    const twin = this.options.core.twins.get(deviceId);
    if (!twin) {
      this.options.publish(client, `$iothub/twin/res/404/?$rid=${requestId}`, json(undefined));
      return;
    }
    const body = {
      desired: { ...twin.desired.properties, $version: twin.desired.version },
      reported: { ...twin.reported.properties, $version: twin.reported.version },
    };
    this.options.publish(client, `$iothub/twin/res/200/?$rid=${requestId}`, json(body));
  }

  private applyReported(
    client: Client,
    deviceId: string,
    requestId: string,
    payload: Buffer,
  ): void {
    const { core, log } = this.options;
    const publish = (topic: string, payload: Buffer) =>
      this.options.publish(client, topic, payload);
    let patch: unknown;
    try {
      patch = JSON.parse(payload.toString('utf8'));
    } catch {
      patch = undefined;
    }
    const work =
      patch === undefined
        ? Promise.reject(
            new HubError('ArgumentInvalid', 'the reported properties patch is not JSON'),
          )
        : core.twins.updateReported(deviceId, patch);
    this.options.track(
      work.then(
        (version) =>
          publish(`$iothub/twin/res/204/?$rid=${requestId}&$version=${version}`, json(undefined)),
        (error: unknown) => {
          const status = twinStatusOf(error);
          log.warn(
            `device ${quote(deviceId)}: reported properties refused (${status}): ${describe(error)}`,
          );
          publish(
            `$iothub/twin/res/${status}/?$rid=${requestId}`,
            json({ errorCode: status * 1000 + 4, message: describe(error) }),
          );
        },
      ),
    );
  }

  private pushDesired(deviceId: string, patch: Record<string, unknown>): void {
    const client = this.desiredSubscribers.get(deviceId);
    if (!client || client.closed) return;
    const version = typeof patch.$version === 'number' ? patch.$version : 0;
    this.options.publish(
      client,
      `$iothub/twin/PATCH/properties/desired/?$version=${version}`,
      json(patch),
    );
  }

  private deliverMethod(client: Client, request: MethodRequest): void {
    if (client.closed) return;
    const topic = `$iothub/methods/POST/${request.methodName}/?$rid=${request.requestId}`;
    this.options.publish(client, topic, Buffer.from(request.body, 'utf8'));
  }

  private stopMethods(client: Client): void {
    const stop = this.methodListeners.get(client);
    if (!stop) return;
    stop();
    this.methodListeners.delete(client);
  }
}
