/**
 * Devices for tests that drive the emulator with the official SDKs: registered through the
 * `azure-iothub` Registry, connected with the `azure-iot-device` MQTT transport; and client
 * certificates for X.509 devices, made per run with `selfsigned`.
 */
import { X509Certificate } from 'node:crypto';
import { NoRetry, type Message } from 'azure-iot-common';
import { Client as DeviceClient, type Twin as DeviceTwin } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';
import type { Registry } from 'azure-iothub';
import { generate } from 'selfsigned';

export interface TestDevice {
  deviceId: string;
  key: string;
}

/** Registers `deviceId` through the official Registry and returns its primary key. */
export async function registerDevice(
  registry: Registry,
  deviceId: string,
  status: 'enabled' | 'disabled' = 'enabled',
): Promise<TestDevice> {
  const { responseBody } = await registry.create({ deviceId, status });
  const key = responseBody.authentication?.symmetricKey?.primaryKey;
  if (!key) throw new Error('the registry returned no key');
  return { deviceId, key };
}

/**
 * An MQTT device client that fails fast: the SDK's default policy retries for minutes, and the
 * tests assert the first answer.
 */
export function mqttDeviceClient(connectionString: string): DeviceClient {
  const client = DeviceClient.fromConnectionString(connectionString, Mqtt);
  client.setRetryPolicy(new NoRetry());
  return client;
}

/** Opens `client`, completing (PUBACKing) every C2D message; returns what arrives, in order. */
export async function openCompleting(client: DeviceClient): Promise<Message[]> {
  const received: Message[] = [];
  client.on('message', (message: Message) => {
    received.push(message);
    void client.complete(message);
  });
  await client.open();
  return received;
}

/** A device SDK message's body as text. */
export function dataText(message: Message | undefined): string {
  const data: unknown = message?.getData();
  return Buffer.isBuffer(data) ? data.toString('utf8') : typeof data === 'string' ? data : '';
}

/** The device SDK types `properties.reported` loosely; its `update` reports a patch. */
/**
 * Collects every `properties.desired` event of a device twin, from when the hub has desired
 * notifications on: the SDK subscribes in the background when the listener is added, so a change
 * made at once could reach the hub first; enabling them again resolves once they are on.
 */
export async function desiredEvents(twin: DeviceTwin): Promise<Record<string, unknown>[]> {
  const events: Record<string, unknown>[] = [];
  twin.on('properties.desired', (delta: Record<string, unknown>) => events.push(delta));
  await new Promise<void>((resolve, reject) =>
    twin.enableTwinDesiredPropertiesUpdates((error) => (error ? reject(error) : resolve())),
  );
  return events;
}

export function report(twin: DeviceTwin, patch: object): Promise<void> {
  const reported = twin.properties.reported as unknown as {
    update(patch: object, done: (error?: Error) => void): void;
  };
  return new Promise((resolve, reject) =>
    reported.update(patch, (error?: Error) => (error ? reject(error) : resolve())),
  );
}

const dayMs = 24 * 60 * 60 * 1000;

/** `iothub-connection-auth-method` of telemetry from a certificate-authenticated device. */
export const x509AuthMethod =
  '{"scope":"device","type":"x509","issuer":"iothub","acceptingIpFilterRule":null}';

/** `iothub-connection-auth-method` of telemetry from a device with a SAS key or token. */
export const sasAuthMethod =
  '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}';

export interface TestCertificate {
  cert: string;
  key: string;
  /** SHA-1 thumbprint, upper-case hex (as the portal shows it). */
  sha1: string;
  sha256: string;
}

export interface CertificateOptions {
  /** The issuer; self-signed without one. */
  ca?: { cert: string; key: string };
  isCa?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

/** A client (or CA) certificate for `commonName`, valid from yesterday for 30 days unless told. */
export async function makeCertificate(
  commonName: string,
  options: CertificateOptions = {},
): Promise<TestCertificate> {
  const now = Date.now();
  const result = await generate([{ name: 'commonName', value: commonName }], {
    algorithm: 'sha256',
    keySize: 2048,
    notBeforeDate: options.notBefore ?? new Date(now - dayMs),
    notAfterDate: options.notAfter ?? new Date(now + 30 * dayMs),
    ...(options.ca ? { ca: options.ca } : {}),
    extensions: options.isCa
      ? [
          { name: 'basicConstraints', cA: true, critical: true },
          { name: 'keyUsage', keyCertSign: true, digitalSignature: true, critical: true },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'extKeyUsage', clientAuth: true },
        ],
  });
  const parsed = new X509Certificate(result.cert);
  const hex = (fingerprint: string) => fingerprint.replace(/:/g, '').toUpperCase();
  return {
    cert: result.cert,
    key: result.private,
    sha1: hex(parsed.fingerprint),
    sha256: hex(parsed.fingerprint256),
  };
}

/** An expired certificate: valid from ten days ago until yesterday. */
export function expiredPeriod(): Pick<CertificateOptions, 'notBefore' | 'notAfter'> {
  return { notBefore: new Date(Date.now() - 10 * dayMs), notAfter: new Date(Date.now() - dayMs) };
}

/** Registers a `selfSigned` X.509 device with these thumbprints. */
export async function registerSelfSigned(
  registry: Registry,
  deviceId: string,
  primaryThumbprint: string,
  secondaryThumbprint?: string,
): Promise<void> {
  await registry.create({
    deviceId,
    status: 'enabled',
    authentication: {
      type: 'selfSigned',
      x509Thumbprint: { primaryThumbprint, secondaryThumbprint },
    },
  });
}

/** Registers a `certificateAuthority` X.509 device (its certificate names it, a trusted CA signs). */
export async function registerCaSigned(registry: Registry, deviceId: string): Promise<void> {
  await registry.create({
    deviceId,
    status: 'enabled',
    authentication: { type: 'certificateAuthority' },
  });
}
