/**
 * The official SDKs' WebSocket transports on a hub that is not on port 443. `MqttWs` (devices)
 * and `AmqpWs` (azure-iothub) always dial `wss://<HostName>:443/$iothub/websocket`; a test hub
 * listens on an ephemeral port. The seams (recipe in docs/emulator.md):
 * - `MqttWs`: the documented `mqtt.webSocketAgent` option. Node's `https.Agent` lays its own
 *   constructor options over each request's, so `new https.Agent({ port })` redirects the
 *   connection the transport opens to 443; the device's `HostName` is the bare host.
 * - `AmqpWs` (service): it takes no agent, so a subclass builds the URL from `HostName` with its
 *   port — the transport's own (protected) URL hook, everything else is the SDK's.
 */
import https from 'node:https';
import { NoRetry } from 'azure-iot-common';
import { Client as DeviceClient } from 'azure-iot-device';
import { MqttWs } from 'azure-iot-device-mqtt';
import { AmqpWs, Client as ServiceClient } from 'azure-iothub';
import { deviceConnectionString } from '../../lib/connection-string';
import { splitHostPort } from '../../lib/iothub/registry-agent';

/** azure-iothub's `AmqpWs`, dialling the port in `HostName` instead of always 443. */
export class HostPortAmqpWs extends AmqpWs {
  protected override _getConnectionUri(): string {
    return `wss://${this._config.host}/$iothub/websocket`;
  }
}

/** A service client over AMQP-over-WebSockets for a hub at `HostName=host:port`. */
export function amqpWsServiceClient(serviceConnectionString: string): ServiceClient {
  return ServiceClient.fromConnectionString(serviceConnectionString, HostPortAmqpWs);
}

/**
 * A device over MQTT-over-WebSockets (`MqttWs`) for the hub named `host:port`, failing fast
 * (no retries): its connection string names the bare host, the agent supplies the port.
 */
export async function mqttWsDeviceClient(
  hubHostName: string,
  deviceId: string,
  key: string,
): Promise<DeviceClient> {
  const { host, port } = splitHostPort(hubHostName);
  const client = DeviceClient.fromConnectionString(
    deviceConnectionString(host, deviceId, key),
    MqttWs,
  );
  client.setRetryPolicy(new NoRetry());
  if (port !== undefined) {
    await client.setOptions({ mqtt: { webSocketAgent: new https.Agent({ port }) } });
  }
  return client;
}
