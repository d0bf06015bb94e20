/**
 * The IoT Hub clients the API uses, described by the few members it calls (so tests can hand
 * in fakes), and their construction from settings: a connection string (with `host:port`
 * support through `createRegistry`) or, in Azure, a managed identity through Entra ID.
 */
import { DefaultAzureCredential } from '@azure/identity';
import { NoRetry } from 'azure-iot-common';
import type { Message } from 'azure-iot-common';
import { Client, Registry } from 'azure-iothub';
import type { IotHubAccess } from '../settings';
import { createRegistry, createServiceClient } from './registry-agent';

/** A device identity as the registry returns it (the fields the API reads). */
export interface HubDevice {
  deviceId: string;
  etag?: string;
  status?: string;
  statusReason?: string;
  connectionState?: string;
  lastActivityTime?: string;
  cloudToDeviceMessageCount?: string | number;
  authentication?: {
    type?: string;
    symmetricKey?: { primaryKey?: string | null; secondaryKey?: string | null };
  };
}

export interface HubQuery {
  readonly continuationToken: string | undefined;
  readonly hasMoreResults: boolean;
  next(continuationToken?: string): Promise<{ result: unknown }>;
}

/** The registry operations the API uses (promise forms of `azure-iothub`'s `Registry`). */
export interface RegistryClient {
  create(device: Registry.DeviceDescription): Promise<HubDevice>;
  get(deviceId: string): Promise<HubDevice>;
  update(device: Registry.DeviceDescription): Promise<HubDevice>;
  delete(deviceId: string): Promise<void>;
  createQuery(sqlQuery: string, pageSize?: number): HubQuery;
}

/** One feedback message from the hub: a body, settled only once its records are stored. */
export interface FeedbackMessage {
  data: unknown;
  complete(): Promise<void>;
  reject(): Promise<void>;
}

export interface FeedbackReceiver {
  onMessage(listener: (message: FeedbackMessage) => void): void;
  onError(listener: (error: Error) => void): void;
}

/** The service-client operations the API uses (`azure-iothub`'s AMQP `Client`). */
export interface ServiceClient {
  open(): Promise<void>;
  close(): Promise<void>;
  send(deviceId: string, message: Message): Promise<void>;
  getFeedbackReceiver(): Promise<FeedbackReceiver>;
  onDisconnect(listener: () => void): void;
}

export function adaptRegistry(registry: Registry): RegistryClient {
  return {
    create: async (device) => (await registry.create(device)).responseBody,
    get: async (deviceId) => (await registry.get(deviceId)).responseBody,
    update: async (device) => (await registry.update(device)).responseBody,
    delete: async (deviceId) => {
      await registry.delete(deviceId);
    },
    createQuery: (sqlQuery, pageSize) => {
      const query = registry.createQuery(sqlQuery, pageSize);
      return {
        get continuationToken() {
          return query.continuationToken ?? undefined;
        },
        get hasMoreResults() {
          return query.hasMoreResults;
        },
        next: async (token) => {
          const page: { result: unknown } = token ? await query.next(token) : await query.next();
          return { result: page.result };
        },
      };
    },
  };
}

function adaptReceiver(receiver: Client.ServiceReceiver): FeedbackReceiver {
  return {
    onMessage: (listener) => {
      receiver.on('message', (message: Message) =>
        listener({
          data: message.data,
          // The typings declare these callback-only; settle through the callback form.
          complete: () =>
            new Promise<void>((resolve, reject) =>
              receiver.complete(message, (error) => (error ? reject(error) : resolve())),
            ),
          reject: () =>
            new Promise<void>((resolve, reject) =>
              receiver.reject(message, (error) => (error ? reject(error) : resolve())),
            ),
        }),
      );
    },
    onError: (listener) => {
      receiver.on('error', listener);
    },
  };
}

export function adaptServiceClient(client: Client): ServiceClient {
  return {
    open: async () => {
      await client.open();
    },
    close: async () => {
      await client.close();
    },
    send: async (deviceId, message) => {
      await client.send(deviceId, message);
    },
    getFeedbackReceiver: async () => adaptReceiver((await client.getFeedbackReceiver()).result),
    onDisconnect: (listener) => {
      client.on('disconnect', listener);
    },
  };
}

export function registryFromSettings(access: IotHubAccess): RegistryClient {
  return adaptRegistry(
    access.kind === 'identity'
      ? Registry.fromTokenCredential(access.hostName, new DefaultAzureCredential())
      : createRegistry(access.connectionString),
  );
}

/**
 * A fresh, unopened AMQP service client. Its retry policy is `NoRetry`: the SDK's default policy
 * retries a failing open for about four minutes, far beyond any HTTP caller's patience; the API
 * answers 503 at once instead and the next request tries again.
 */
export function serviceClientFromSettings(access: IotHubAccess): ServiceClient {
  const client =
    access.kind === 'identity'
      ? Client.fromTokenCredential(access.hostName, new DefaultAzureCredential())
      : // With host:port support for its REST calls (direct methods), as for the Registry.
        createServiceClient(access.connectionString);
  client.setRetryPolicy(new NoRetry());
  return adaptServiceClient(client);
}
