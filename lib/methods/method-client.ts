/**
 * Direct-method invocation through `azure-iothub`'s service `Client` (`invokeDeviceMethod`, a REST
 * call), described by the one member the API uses so unit tests can hand in a fake, and its
 * construction from settings: a connection string or, in Azure, Entra ID.
 */
import { DefaultAzureCredential } from '@azure/identity';
import { NoRetry } from 'azure-iot-common';
import { Client } from 'azure-iothub';
import type { MethodResult } from './schemas';
import type { IotHubAccess } from '../settings';
import { createServiceClient } from '../iothub/registry-agent';

export interface MethodCall {
  methodName: string;
  payload: unknown;
  responseTimeoutInSeconds: number;
  connectTimeoutInSeconds: number;
}

export interface MethodClient {
  /** Resolves with what the device answered (any status); rejects with the SDK's error. */
  invoke(deviceId: string, call: MethodCall): Promise<MethodResult>;
}

export function adaptMethodClient(client: Client): MethodClient {
  return {
    invoke: async (deviceId, call) => {
      // The SDK's typing wants an object payload; any JSON value goes through as is.
      const response: { result: unknown } = await client.invokeDeviceMethod(deviceId, {
        ...call,
        payload: call.payload as object,
      });
      const answer = (response.result ?? {}) as {
        status?: unknown;
        payload?: MethodResult['payload'];
      };
      return {
        status: typeof answer.status === 'number' ? answer.status : 200,
        payload: answer.payload ?? null,
      };
    },
  };
}

/**
 * A service client used only for its REST path (it never opens AMQP). A method call is not
 * idempotent — the device may have acted before an answer was lost — so it is never retried:
 * the SDK's default policy would call the device again.
 */
export function methodClientFromSettings(access: IotHubAccess): MethodClient {
  const client =
    access.kind === 'identity'
      ? Client.fromTokenCredential(access.hostName, new DefaultAzureCredential())
      : createServiceClient(access.connectionString);
  client.setRetryPolicy(new NoRetry());
  return adaptMethodClient(client);
}
