/**
 * The tutorials' simulated device (`SimulatedDevice.py` in "Connect your simulated device to your
 * IoT hub" and "Send cloud-to-device messages") as a small TypeScript program: it connects with a
 * device connection string over MQTT, sends `{deviceId, windSpeed}` every interval with a message
 * id, a correlation id and the custom property `Property`, and prints and completes every
 * cloud-to-device (C2D) message it receives. Ctrl-C closes the connection and exits 0.
 *
 * It depends on nothing in this repository, so it can be copied into any project that has
 * `azure-iot-device` and `azure-iot-device-mqtt`; it works against Azure IoT Hub and against the
 * local IoT Hub of `npm start` alike.
 *
 *   npm run example:device -- "<device connection string>" [--interval 1] [--ca <file>]
 *   node dist/examples/SimulatedDevice.js "<device connection string>"
 *
 * The connection string can also come from IOTHUB_DEVICE_CONNECTION_STRING (keeps it out of the
 * shell history). The local IoT Hub's certificate is issued by a CA of its own: either start Node
 * with `NODE_EXTRA_CA_CERTS` set to the bundle `npm start` prints, or pass that file with `--ca`
 * (or IOTHUB_CA_FILE). Azure IoT Hub needs neither.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Client, ConnectionString, Message } from 'azure-iot-device';
import { Mqtt } from 'azure-iot-device-mqtt';

const usage = `usage: SimulatedDevice "<device connection string>" [--interval <seconds>] [--ca <PEM file>]
  The connection string may instead be in IOTHUB_DEVICE_CONNECTION_STRING, the CA file in
  IOTHUB_CA_FILE. Get a connection string from POST /api/devices (its "connectionString").`;

/** The tutorial's average wind speed; each reading is 10 + random·4 + 2. */
const averageWindSpeed = 10;

interface Options {
  connectionString: string;
  deviceId: string;
  intervalMs: number;
  caFile?: string;
}

/** Thrown for bad command-line input: printed with the usage, exit code 2. */
class UsageError extends Error {}

/** Keys and signatures never reach the console, even inside an SDK error message. */
function redact(text: string): string {
  return text.replace(/(SharedAccessKey|SharedAccessSignature|sig)=[^;&\s]+/gi, '$1=***');
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${redact(error.message)}` : 'unknown error';
}

function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { interval: { type: 'string', default: '1' }, ca: { type: 'string' } },
    });
  } catch (error) {
    throw new UsageError(describe(error));
  }
  const connectionString = parsed.positionals[0] ?? env.IOTHUB_DEVICE_CONNECTION_STRING ?? '';
  if (!connectionString) throw new UsageError('no device connection string given');
  let deviceId: string;
  try {
    // Throws unless the string names a HostName, a DeviceId and a key (or signature).
    const fields = ConnectionString.parse(connectionString);
    if (!fields.HostName || !fields.DeviceId) throw new Error('HostName or DeviceId is missing');
    deviceId = fields.DeviceId;
  } catch (error) {
    throw new UsageError(`the device connection string is not usable: ${describe(error)}`);
  }
  const seconds = Number(parsed.values.interval);
  if (!Number.isFinite(seconds) || seconds < 0.1) {
    throw new UsageError('--interval must be a number of seconds, at least 0.1');
  }
  const caFile = parsed.values.ca ?? env.IOTHUB_CA_FILE;
  return { connectionString, deviceId, intervalMs: seconds * 1000, ...(caFile ? { caFile } : {}) };
}

/** One reading, as the tutorial sends it. */
function telemetryMessage(deviceId: string, counter: number): Message {
  const windSpeed = Math.round((averageWindSpeed + Math.random() * 4 + 2) * 100) / 100;
  const message = new Message(JSON.stringify({ deviceId, windSpeed }));
  message.messageId = randomUUID();
  message.correlationId = `correlation_${counter}`;
  // Lets IoT Hub routing (and this project's back end) read the body as JSON.
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('Property', `PropMsg_${counter}`);
  return message;
}

function bodyText(message: Message): string {
  const data: unknown = message.getData();
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return typeof data === 'string' ? data : JSON.stringify(data);
}

/** Prints a C2D message and completes it, which is what makes its feedback "delivered". */
async function receive(client: Client, message: Message): Promise<void> {
  const properties: Record<string, string> = {};
  for (let i = 0; i < message.properties.count(); i++) {
    const { key, value } = message.properties.getItem(i);
    properties[key] = value;
  }
  console.log(`Received C2D message ${message.messageId ?? '(no id)'}: ${bodyText(message)}`);
  if (message.correlationId) console.log(`  correlationId: ${String(message.correlationId)}`);
  if (Object.keys(properties).length > 0)
    console.log(`  properties: ${JSON.stringify(properties)}`);
  try {
    await client.complete(message);
    console.log(`Completed C2D message ${message.messageId ?? '(no id)'}`);
  } catch (error) {
    console.error(`Could not complete the C2D message: ${describe(error)}`);
  }
}

/**
 * What to do about a failed connection. The SDK reports most failures, even a refused TCP
 * connection, as `UnauthorizedError`, so the message text tells them apart.
 */
function connectionHint(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : '';
  const text = error instanceof Error ? `${error.message} ${cause}` : '';
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH/.test(text)) {
    return (
      "Nothing answered at the connection string's HostName: check the host and port (for the\n" +
      'local IoT Hub: is `npm start` running?).'
    );
  }
  if (/certificate|self[- ]signed|CERT_|unable to verify/i.test(text)) {
    return (
      "The hub's TLS certificate is not trusted. For the local IoT Hub, start Node with\n" +
      'NODE_EXTRA_CA_CERTS set to the bundle `npm start` prints (<data folder>/ca-bundle.pem),\n' +
      'or pass that file with --ca <file>.'
    );
  }
  if (error instanceof Error && error.name === 'UnauthorizedError') {
    return 'The hub refused the credentials: check the device id and key (and that the device exists).';
  }
  return 'Check that the hub at HostName is reachable and the connection string is current.';
}

async function sendLoop(client: Client, options: Options, stopped: AbortSignal): Promise<void> {
  for (let counter = 0; !stopped.aborted; counter++) {
    const message = telemetryMessage(options.deviceId, counter);
    try {
      await client.sendEvent(message);
      console.log(
        `Sent message [${counter}] ${bodyText(message)} (messageId ${message.messageId})`,
      );
    } catch (error) {
      console.error(`Message [${counter}] was not sent: ${describe(error)}`);
    }
    await sleep(options.intervalMs, undefined, { signal: stopped }).catch(() => undefined);
  }
}

async function run(options: Options): Promise<number> {
  const client = Client.fromConnectionString(options.connectionString, Mqtt);
  // The local IoT Hub's CA (a PEM file; a bundle of several certificates works too).
  if (options.caFile) await client.setOptions({ ca: readFileSync(options.caFile, 'utf8') });
  client.on('message', (message: Message) => void receive(client, message));
  let connected = false;
  // Without a listener an 'error' event would crash the process; a failed open() says it anyway.
  client.on('error', (error: unknown) => {
    if (connected) console.error(`Client error: ${describe(error)}`);
  });

  const stop = new AbortController();
  let exitCode = 0;
  client.on('disconnect', () => {
    // Emitted once the SDK's retry policy has given up reconnecting.
    console.error('Disconnected from the hub; stopping.');
    exitCode = 1;
    stop.abort();
  });
  const onSignal = () => {
    console.log('Stopping...');
    stop.abort();
    // Still connecting: there is nothing to close yet, and open() may be retrying.
    if (!connected) process.exit(0);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const hubHost = ConnectionString.parse(options.connectionString).HostName;
  console.log(`Connecting device ${options.deviceId} to ${hubHost} over MQTT...`);
  try {
    await client.open();
  } catch (error) {
    console.error(`Could not connect: ${describe(error)}\n${connectionHint(error)}`);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    return 1;
  }
  connected = true;
  console.log(
    `Connected. Sending a reading every ${options.intervalMs / 1000} s and waiting for C2D messages; press Ctrl-C to exit.`,
  );
  await sendLoop(client, options, stop.signal);
  await client.close().catch((error: unknown) => console.error(`Close: ${describe(error)}`));
  console.log('Connection closed.');
  return exitCode;
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${error.message}\n${usage}`);
    process.exit(2);
  }
  process.exitCode = await run(options);
}

main().catch((error: unknown) => {
  console.error(`SimulatedDevice: ${describe(error)}`);
  process.exit(1);
});
