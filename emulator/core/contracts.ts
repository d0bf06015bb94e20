/**
 * The local IoT Hub's protocol-free core, as the protocol adapters see it. Adapters (HTTPS
 * registry, MQTT devices, AMQP service, Event Hub-compatible endpoint) only translate between
 * their wire format and these calls; all state and rules live behind `IotHubCore`.
 *
 * Every mutating call resolves only once the change is durable (in durable mode), so an adapter
 * may acknowledge to its client as soon as the promise resolves.
 */

/** Time source; tests inject a fake one instead of sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}
export interface ClockTimer {
  readonly id: unknown;
}

export type HubErrorCode =
  | 'ArgumentInvalid'
  | 'DeviceNotFound'
  | 'DeviceAlreadyExists'
  | 'PreconditionFailed'
  | 'DeviceMaximumQueueDepthExceeded'
  | 'MessageTooLarge'
  | 'Unauthorized'
  | 'DeviceDisabled'
  | 'ThrottlingException'
  | 'DeviceNotOnline'
  | 'GatewayTimeout'
  | 'NotImplemented'
  | 'InvalidProtocolVersion'
  | 'ServerError';

/** Errors as data: one code per failure, mapped once per protocol (HTTP status, AMQP condition, CONNACK). */
export class HubError extends Error {
  constructor(
    readonly code: HubErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HubError';
  }
}

export type DeviceStatus = 'enabled' | 'disabled';

export interface SymmetricKeys {
  primaryKey: string;
  secondaryKey: string;
}

/**
 * How a device proves its identity besides a SAS token: an X.509 certificate whose thumbprint is
 * registered (`selfSigned`), or one issued by a CA the hub trusts (`certificateAuthority`).
 * Thumbprints are kept as upper-case hex (SHA-1: 40 digits, SHA-256: 64).
 */
export type X509Authentication =
  | { type: 'selfSigned'; primaryThumbprint: string | null; secondaryThumbprint: string | null }
  | { type: 'certificateAuthority' };

/** What create and update accept; `sas` switches a device (back) to symmetric keys. */
export type DeviceAuthenticationInput = { type: 'sas' } | X509Authentication;

/** A device identity as stored; `etag` changes on every update. */
export interface DeviceRecord {
  deviceId: string;
  generationId: string;
  etag: string;
  status: DeviceStatus;
  statusReason: string | null;
  /** ISO 8601 */
  statusUpdatedTime: string;
  /** Both empty for an X.509 device (IoT Hub reports them as null). */
  keys: SymmetricKeys;
  /** Absent for a SAS device (and in records written before X.509 existed). */
  authentication?: X509Authentication;
  /** ISO 8601 of creation. */
  createdTime: string;
}

/** Volatile per-device facts (not persisted): connection state and activity. */
export interface DeviceActivity {
  connectionState: 'Connected' | 'Disconnected';
  /** ISO 8601, or the epoch ('0001-01-01T00:00:00Z' as IoT Hub reports "never"). */
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  cloudToDeviceMessageCount: number;
}

export interface CreateDeviceInput {
  deviceId: string;
  status?: DeviceStatus;
  statusReason?: string | null;
  /** Empty or absent keys are generated. */
  keys?: Partial<SymmetricKeys>;
  /** Absent: SAS. */
  authentication?: DeviceAuthenticationInput;
}

export interface UpdateDeviceInput {
  status?: DeviceStatus;
  statusReason?: string | null;
  keys?: Partial<SymmetricKeys>;
  /** Absent: the device keeps its kind of authentication. */
  authentication?: DeviceAuthenticationInput;
}

export interface Registry {
  /** Throws ArgumentInvalid (bad id or keys) or DeviceAlreadyExists. */
  create(input: CreateDeviceInput): Promise<DeviceRecord>;
  get(deviceId: string): DeviceRecord | undefined;
  /**
   * The device's generation id when it exists and is enabled, else undefined: what every telemetry
   * append checks, answered without copying the record.
   */
  enabledGenerationId(deviceId: string): string | undefined;
  /** Sorted by deviceId. */
  list(): DeviceRecord[];
  /** The first `top` devices by id (1-1000, default 1000), as IoT Hub lists them; ArgumentInvalid otherwise. */
  listUpTo(top?: number): DeviceRecord[];
  /** `ifMatch` undefined or '*' matches any etag; a mismatch throws PreconditionFailed. */
  update(deviceId: string, input: UpdateDeviceInput, ifMatch?: string): Promise<DeviceRecord>;
  /** Also purges the device's C2D queue. Throws DeviceNotFound or PreconditionFailed. */
  delete(deviceId: string, ifMatch?: string): Promise<void>;
  activity(deviceId: string): DeviceActivity;
  setConnected(deviceId: string, connected: boolean): void;
  recordActivity(deviceId: string): void;
  /** Called after a device is disabled, re-keyed or deleted, so adapters drop live connections. */
  onDeviceChanged(
    listener: (deviceId: string, device: DeviceRecord | undefined) => void,
  ): () => void;
}

export type AckMode = 'none' | 'positive' | 'negative' | 'full';

/** A cloud-to-device message as the service sent it. */
export interface C2DMessageInput {
  messageId?: string;
  correlationId?: string;
  userId?: string;
  contentType?: string;
  contentEncoding?: string;
  /** Absolute expiry, ms since the epoch; the hub's default TTL (1 hour) applies when absent. */
  expiryTime?: number;
  ack: AckMode;
  /** Application properties (string values). */
  properties: Record<string, string>;
  body: Buffer;
}

export interface C2DMessage extends Omit<C2DMessageInput, 'expiryTime'> {
  /** Assigned by the hub when the sender gave none. */
  messageId: string;
  deviceId: string;
  /**
   * From `enqueue`: the message's key in the store. From `lockNext`: that delivery's lock token,
   * new on every delivery (the token `complete`, `abandon`, `reject` and `deadLetter` take).
   */
  lockToken: string;
  /** ms since the epoch. */
  enqueuedTime: number;
  expiryTime: number;
  deliveryCount: number;
  /** The `to` system property: `/devices/{id}/messages/devicebound`. */
  to: string;
}

export interface CloudToDevice {
  /** Max queue depth per device (IoT Hub: 50). */
  readonly maxQueueDepth: number;
  /** Max delivery attempts before DeliveryCountExceeded (IoT Hub: 10). */
  readonly maxDeliveryCount: number;
  /**
   * Durable on resolve. Throws DeviceNotFound, DeviceMaximumQueueDepthExceeded, MessageTooLarge
   * (over 64 KB counting body, system property values, property names and values),
   * ArgumentInvalid (property names or values outside IoT Hub's allowed characters).
   */
  enqueue(deviceId: string, input: C2DMessageInput): Promise<C2DMessage>;
  /**
   * Locks and returns the next deliverable message (expired ones are removed with feedback on the
   * way), incrementing its delivery count; undefined when none is waiting. With `lockTimeoutMs`
   * (HTTPS polling: IoT Hub's one-minute lock) the lock ends by itself, as an `abandon` would,
   * when the device settles nothing in time; without it the lock lasts until settled (MQTT: the
   * connection abandons what is in flight when it closes).
   */
  lockNext(deviceId: string, lockTimeoutMs?: number): C2DMessage | undefined;
  /** Device accepted it (MQTT PUBACK): removed, `Success` feedback if the ack mode asks. */
  complete(deviceId: string, lockToken: string): Promise<void>;
  /** Back to the queue; past the max delivery count it is dropped with `DeliveryCountExceeded`. */
  abandon(deviceId: string, lockToken: string): Promise<void>;
  /**
   * The transport cannot carry it (e.g. its MQTT topic would be too long): removed at once with
   * `DeliveryCountExceeded` feedback and `description`, so the messages behind it still flow.
   */
  deadLetter(deviceId: string, lockToken: string, description: string): Promise<void>;
  /** Device refused it: removed, `Rejected` feedback if the ack mode asks. */
  reject(deviceId: string, lockToken: string): Promise<void>;
  /** Removes every queued message (`Purged` feedback where asked); returns how many. */
  purge(deviceId: string): Promise<number>;
  depth(deviceId: string): number;
  /** Fires when a message becomes deliverable for the device (enqueue or abandon). */
  onAvailable(listener: (deviceId: string) => void): () => void;
}

export type FeedbackStatusCode =
  'Success' | 'Expired' | 'DeliveryCountExceeded' | 'Rejected' | 'Purged';

export interface FeedbackRecord {
  originalMessageId: string;
  deviceId: string;
  deviceGenerationId: string;
  /** ISO 8601 */
  enqueuedTimeUtc: string;
  statusCode: FeedbackStatusCode;
  description: string;
}

/** Records grouped as IoT Hub sends them: up to 64, or whatever accumulated within the batch delay. */
export interface FeedbackBatch {
  batchId: string;
  /** ms since the epoch when the batch was closed. */
  enqueuedTime: number;
  records: FeedbackRecord[];
}

export interface Feedback {
  /** Takes the oldest closed batch not handed out yet; it stays pending until settled. */
  take(): FeedbackBatch | undefined;
  /** The receiver accepted it: gone for good (durable on resolve). */
  settle(batchId: string): Promise<void>;
  /** The receiver released it, or its link closed unsettled: it is handed out again. */
  release(batchId: string): void;
  /** Fires when a batch is ready to be taken. */
  onAvailable(listener: () => void): () => void;
}

/** Telemetry as a device sent it, with what the hub adds. */
export interface TelemetryInput {
  deviceId: string;
  body: Buffer;
  /** Custom (application) properties. */
  properties: Record<string, string>;
  messageId?: string;
  correlationId?: string;
  userId?: string;
  to?: string;
  contentType?: string;
  contentEncoding?: string;
  /** Absolute expiry the device set (ms since the epoch), if any. */
  expiryTime?: number;
  /** The device's generation id at the time it sent (iothub-connection-auth-generation-id). */
  generationId: string;
  /** e.g. '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}' */
  authMethod: string;
}

/** An event in one partition of the Event Hub-compatible log. */
export interface StoredEvent extends TelemetryInput {
  partitionId: string;
  sequenceNumber: number;
  /** A decimal string that orders like the sequence number (compare numerically). */
  offset: string;
  /** ms since the epoch. */
  enqueuedTime: number;
}

export interface PartitionInfo {
  partitionId: string;
  beginSequenceNumber: number;
  lastEnqueuedSequenceNumber: number;
  lastEnqueuedOffset: string;
  /** ms since the epoch; 0 when empty. */
  lastEnqueuedTime: number;
  isEmpty: boolean;
}

export interface DeviceToCloud {
  readonly partitionIds: readonly string[];
  /** Stable hash of the device id onto a partition. */
  partitionOf(deviceId: string): string;
  /** Durable on resolve (group commit: concurrent appends share one fsync). */
  append(input: TelemetryInput): Promise<StoredEvent>;
  /** Events with sequence number ≥ fromSequenceNumber, oldest first, at most `max`. */
  read(partitionId: string, fromSequenceNumber: number, max: number): StoredEvent[];
  /** First sequence number whose enqueued time is ≥ `time` (ms), or the next one to be written. */
  sequenceNumberAtTime(partitionId: string, time: number): number;
  info(partitionId: string): PartitionInfo;
  /** Fires after an append to the partition is durable. */
  onAppend(listener: (event: StoredEvent) => void): () => void;
}

/** One section of a twin (desired or reported) as stored. */
export interface TwinSection {
  properties: Record<string, unknown>;
  /** Mirrors `properties`: `$lastUpdated` (and `$lastUpdatedVersion` for desired) per node. */
  metadata: Record<string, unknown>;
  version: number;
}

/** A device twin as stored: what the device and the service can change. */
export interface TwinRecord {
  deviceId: string;
  etag: string;
  /** Bumped by every change to tags, desired or reported. */
  version: number;
  tags: Record<string, unknown>;
  desired: TwinSection;
  reported: TwinSection;
}

/** What the service may change: tags and desired properties (either may be absent). */
export interface TwinUpdate {
  tags?: Record<string, unknown>;
  desired?: Record<string, unknown>;
}

/** One page of a query's answer. */
export interface QueryPage {
  /** Twin documents for `SELECT *`, projected objects otherwise. */
  items: Record<string, unknown>[];
  /** 'Twin' for whole twins, 'JSON' for projections and aggregates (IoT Hub's x-ms-item-type). */
  itemType: 'Twin' | 'JSON';
  /** Present only when more pages follow. */
  continuation?: string;
}

export interface Twins {
  /** The stored twin, or a fresh one for a device that has never had a change; undefined for no device. */
  get(deviceId: string): TwinRecord | undefined;
  /** The twin as IoT Hub's REST API returns it, identity fields included. */
  document(deviceId: string): Record<string, unknown> | undefined;
  /** PATCH: merges tags and desired; `null` removes. Throws DeviceNotFound, PreconditionFailed, ArgumentInvalid, MessageTooLarge. */
  update(deviceId: string, update: TwinUpdate, ifMatch?: string): Promise<TwinRecord>;
  /** PUT: replaces tags and desired. */
  replace(deviceId: string, update: TwinUpdate, ifMatch?: string): Promise<TwinRecord>;
  /** A device's reported-properties patch; resolves with the new reported version. */
  updateReported(deviceId: string, patch: unknown): Promise<number>;
  /**
   * IoT Hub's query language over twins: one page of at most `pageSize` rows (1-10000, default
   * 100; ArgumentInvalid otherwise); `continuation` as handed out by a previous page.
   */
  query(text: unknown, pageSize?: number, continuation?: string): QueryPage;
  /** Fires after a desired change is durable: the patch a device receives, `$version` included. */
  onDesiredChanged(
    listener: (deviceId: string, patch: Record<string, unknown>) => void,
  ): () => void;
}

export interface MethodInvocation {
  methodName: string;
  payload: unknown;
  responseTimeoutMs: number;
  connectTimeoutMs: number;
}

export interface MethodRequest {
  requestId: string;
  methodName: string;
  /** The payload as JSON text. */
  body: string;
}

export interface MethodResult {
  status: number;
  payload: unknown;
}

export interface DirectMethods {
  /**
   * Calls a method on a connected device. Throws DeviceNotFound, DeviceNotOnline (no listener
   * within the connect timeout), GatewayTimeout (no answer within the response timeout).
   */
  invoke(deviceId: string, invocation: MethodInvocation): Promise<MethodResult>;
  /** A connection accepts method calls for the device (the latest one wins); returns its removal. */
  listen(deviceId: string, deliver: (request: MethodRequest) => void): () => void;
  /** A device's answer; false (and ignored) for an unknown or expired request id. */
  respond(deviceId: string, requestId: string, status: number, body: Buffer): boolean;
}

export interface IotHubCore {
  readonly clock: Clock;
  readonly registry: Registry;
  readonly twins: Twins;
  readonly methods: DirectMethods;
  readonly c2d: CloudToDevice;
  readonly feedback: Feedback;
  readonly d2c: DeviceToCloud;
  /** Flushes pending writes and closes files; the core is unusable afterwards. */
  close(): Promise<void>;
}

export interface CoreOptions {
  clock?: Clock;
  /** Directory for durable state; absent = in-memory. */
  dataDir?: string;
  partitionCount?: number;
  /** D2C retention in ms (default 1 day). */
  retentionMs?: number;
  /** Default C2D TTL in ms (default 1 hour). */
  defaultC2DTtlMs?: number;
  /** How long the feedback batcher waits before closing a partial batch (default 15 s; tests use less). */
  feedbackBatchDelayMs?: number;
  maxC2DQueueDepth?: number;
  maxC2DDeliveryCount?: number;
  /**
   * Durable mode: telemetry is acknowledged once written to the operating system (a crash or kill
   * of the hub loses none of it) and fdatasynced in the background within this many ms, all a
   * power failure could lose (default 100). 0 syncs before every acknowledgement. Registry,
   * twin and C2D changes are always synced before they are acknowledged.
   */
  d2cSyncIntervalMs?: number;
}
