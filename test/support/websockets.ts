/**
 * The official SDKs' WebSocket transports on a hub that is not on port 443. `MqttWs` (devices)
 * and `AmqpWs` (azure-iothub) always dial `wss://<HostName>:443/$iothub/websocket`; a test hub
 * listens on an ephemeral port. The seams (recipe in docs/emulator.md):
 * - `MqttWs` and the device's `AmqpWs`: the documented `mqtt.webSocketAgent` and
 *   `amqp.webSocketAgent` options. Node's `https.Agent` lays its own
 *   constructor options over each request's, so `new https.Agent({ port })` redirects the
 *   connection the transport opens to 443; the device's `HostName` is the bare host.
 * - `AmqpWs` (service): it takes no agent, so a subclass builds the URL from `HostName` with its
 *   port — the transport's own (protected) URL hook, everything else is the SDK's.
 */
import https from 'node:https';
import { NoRetry } from 'azure-iot-common';
import { Client as DeviceClient } from 'azure-iot-device';
import { AmqpWs as DeviceAmqpWs } from 'azure-iot-device-amqp';
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
export function mqttWsDeviceClient(
  hubHostName: string,
  deviceId: string,
  key: string,
): Promise<DeviceClient> {
  return webSocketDeviceClient(MqttWs, hubHostName, deviceId, key);
}

/** The same over the device SDK's AMQP-over-WebSockets (`AmqpWs`). */
export function amqpWsDeviceClient(
  hubHostName: string,
  deviceId: string,
  key: string,
): Promise<DeviceClient> {
  return webSocketDeviceClient(DeviceAmqpWs, hubHostName, deviceId, key);
}

async function webSocketDeviceClient(
  protocol: typeof MqttWs | typeof DeviceAmqpWs,
  hubHostName: string,
  deviceId: string,
  key: string,
): Promise<DeviceClient> {
  const { host } = splitHostPort(hubHostName);
  const client = DeviceClient.fromConnectionString(
    deviceConnectionString(host, deviceId, key),
    protocol,
  );
  client.setRetryPolicy(new NoRetry());
  const agent = webSocketAgent(hubHostName);
  const family = protocol === MqttWs ? 'mqtt' : 'amqp';
  if (agent) await client.setOptions({ [family]: { webSocketAgent: agent } });
  return client;
}

/**
 * The agent that takes a device's `MqttWs` (option `mqtt.webSocketAgent`) or `AmqpWs` (option
 * `amqp.webSocketAgent`) to the port of `hubHostName` instead of 443; undefined when it names
 * none. The device's `HostName` (or token `sr`) is then the bare host. A client certificate
 * given with `setOptions({ cert, key })` still rides along: the agent adds only the port.
 */
export function webSocketAgent(hubHostName: string): https.Agent | undefined {
  const { port } = splitHostPort(hubHostName);
  return port === undefined ? undefined : new https.Agent({ port });
}
