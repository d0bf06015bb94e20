/**
 * The local IoT Hub's identity and credentials. The defaults are well known and documented (like
 * Azurite's account key) so connection strings can be copied between machines; they protect
 * nothing and must never be used outside local development.
 */

export type PolicyRight = 'RegistryRead' | 'RegistryWrite' | 'ServiceConnect' | 'DeviceConnect';

export interface SharedAccessPolicy {
  name: string;
  /** base64 */
  primaryKey: string;
  /** base64 */
  secondaryKey: string;
  rights: readonly PolicyRight[];
}

export interface HubIdentity {
  /** The hub's name; also the Event Hub-compatible entity path. */
  hubName: string;
  policies: readonly SharedAccessPolicy[];
}

export const wellKnownHubIdentity: HubIdentity = {
  hubName: 'local-iothub',
  policies: [
    {
      name: 'iothubowner',
      primaryKey: 'bG9jYWwtaW90aHViLW93bmVyLWtleS1ub3Qtc2VjcmV0IQ==',
      secondaryKey: 'bG9jYWwtaW90aHViLW93bmVyLWtleS0yLW5vdC1zZWNyZXQh',
      rights: ['RegistryRead', 'RegistryWrite', 'ServiceConnect', 'DeviceConnect'],
    },
    {
      name: 'service',
      primaryKey: 'bG9jYWwtaW90aHViLXNlcnZpY2Uta2V5LW5vdC1zZWNyZXQh',
      secondaryKey: 'bG9jYWwtaW90aHViLXNlcnZpY2Uta2V5LTItbm90LXNlY3JldA==',
      rights: ['ServiceConnect'],
    },
    {
      name: 'registryReadWrite',
      primaryKey: 'bG9jYWwtaW90aHViLXJlZ2lzdHJ5LWtleS1ub3Qtc2VjcmV0IQ==',
      secondaryKey: 'bG9jYWwtaW90aHViLXJlZ2lzdHJ5LWtleS0yLW5vdC1zZWNyZXQ=',
      rights: ['RegistryRead', 'RegistryWrite'],
    },
  ],
};

/** Default ports; `0` anywhere means ephemeral. */
export const defaultPorts = {
  /** One TLS port for HTTPS, AMQPS and MQTTS, told apart by their first bytes. */
  gateway: 4443,
  /** Standard MQTTS port, served too unless set to -1. */
  mqtt: 8883,
  /** Standard AMQPS port, served too unless set to -1. */
  amqp: 5671,
  /** The Event Hub-compatible endpoint, plain AMQP. */
  events: 5672,
} as const;

/**
 * The connection strings' `HostName`: `host:port`, or the bare host on 443 — the SDKs' WebSocket
 * transports append `:443` to whatever it holds, and `localhost:443:443` cannot be dialled.
 */
export function gatewayHostName(host: string, gatewayPort: number): string {
  return gatewayPort === 443 ? host : `${host}:${gatewayPort}`;
}
