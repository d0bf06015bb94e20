/**
 * `@iot-hub-functions/local-iothub`: a local Azure IoT Hub for development and tests.
 *
 * - `startHub()` runs a hub in this process (its clock may be manual: `hub.clock.advance(ms)`).
 * - `launchHub()` runs one as a child process (the `local-iothub` CLI); with `manualClock` its
 *   time moves only through `hub.clock.advance(ms)` as well (a loopback control call).
 * - `ConnectionInfo` is what both report and what the CLI writes to `connection.json`.
 * - `wellKnownHubIdentity` holds the documented, not-secret policies every local hub uses by default.
 *
 * The in-process hub loads its protocol stack (aedes is an ES module) only when started, so
 * importing this entry point is cheap and works under test runners that cannot load ES modules.
 */
export { defaultPorts, gatewayHostName, wellKnownHubIdentity } from './config';
export type { HubIdentity, PolicyRight, SharedAccessPolicy } from './config';
export {
  buildConnectionString,
  deviceConnectionString,
  hubHostName,
  parseConnectionInfo,
  readConnectionInfo,
} from './connection-info';
export type { BoundPorts, ConnectionInfo } from './connection-info';
export { FakeClock as ManualClock, SystemClock } from './core/clock';
export type { Clock } from './core/contracts';
export { endWithParentArgs, ephemeralPortArgs, hubCliPath, launchHub } from './launcher';
export type { HubClock, HubExit, HubProcess, LaunchHubOptions } from './launcher';
export { startHub } from './in-process';
export type { InProcessHub, StartHubOptions } from './in-process';

// The hub's core without listeners (benchmarks of the core, tools that seed state).
export { createCore } from './core/create-core';
export type { CreateCoreOptions, InspectableCore } from './core/create-core';
export type { FeedbackRecord, IotHubCore, TelemetryInput } from './core/contracts';
/** Which partition a device's telemetry lands in (as IoT Hub: a stable hash of the device id). */
export { stableHash } from './core/d2c-partitions';
export type { SniffedProtocol } from './sniff';

// Trusting the hub's CA from Node processes, and the hub's TLS material.
export { processTrusts, writeCaBundle } from './ca-bundle';
export { ensureTlsMaterial } from './tls';
export type { TlsMaterial } from './tls';

// The data-folder lock the hub takes (also used by tools that own a data folder the same way).
export { acquireDataLock, DataLockedError, readLockHolder } from './data-lock';
export type { DataLock, LockHolder } from './data-lock';
