/**
 * The MQTT device-session registry (emulator/mqtt/session-registry.ts) and the direct publisher
 * behind aedes' `authorizeForward`, against a real in-memory core. aedes itself cannot load in
 * Jest (ESM only), so a client stands in for aedes' Client: its `publish` asks the publisher's
 * `authorizeForward` synchronously, as aedes does for a clean session.
 */
import type { Client, PublishPacket } from 'aedes';
import { FakeClock } from '../../core/clock';
import { createCore, type InspectableCore } from '../../core/create-core';
import { DeviceSession } from '../../mqtt/device-session';
import { DirectPublisher } from '../../mqtt/direct-publisher';
import { DeviceSessionRegistry } from '../../mqtt/session-registry';

interface StandInClient {
  client: Client;
  received: PublishPacket[];
  closes: number;
}

let clock: FakeClock;
let core: InspectableCore;
let publisher: DirectPublisher;
let registry: DeviceSessionRegistry;
let closedSessions: string[];
const log = { info: () => undefined, warn: () => undefined, error: () => undefined };

function standIn(id: string): StandInClient {
  const state: StandInClient = { client: undefined as unknown as Client, received: [], closes: 0 };
  const client = {
    id,
    closed: false,
    close() {
      state.closes += 1;
    },
    publish(packet: PublishPacket, done: (error?: Error) => void) {
      const forwarded = publisher.authorizeForward(client as unknown as Client, packet);
      if (forwarded) state.received.push(forwarded);
      done();
    },
  };
  state.client = client as unknown as Client;
  return state;
}

/** Authenticates `c` as device `dev` and lets the registry register it, as aedes would. */
function connect(c: StandInClient): DeviceSession {
  const session = new DeviceSession({
    core,
    log,
    deviceId: 'dev',
    remoteAddress: c.client.id,
    recheck: () => undefined,
    expiresAt: clock.now() + 3_600_000,
    c2dWindow: 8,
    track: () => undefined,
  });
  registry.authenticated(c.client, session);
  registry.connected(c.client);
  return session;
}

const enqueue = (messageId: string) =>
  core.c2d.enqueue('dev', { ack: 'none', messageId, properties: {}, body: Buffer.from('x') });

beforeEach(async () => {
  clock = new FakeClock();
  core = await createCore({ clock });
  await core.registry.create({ deviceId: 'dev' });
  publisher = new DirectPublisher(log);
  closedSessions = [];
  registry = new DeviceSessionRegistry({
    core,
    log,
    publisher,
    sessionClosed: (client) => closedSessions.push(client.id),
  });
});

afterEach(async () => {
  await core.close();
});

describe('DeviceSessionRegistry', () => {
  it('keeps a device connected through a takeover and delivers C2D to the newer connection', async () => {
    const first = standIn('first');
    const second = standIn('second');
    connect(first).subscribeC2D();
    connect(second).subscribeC2D();
    // aedes closes the first connection when the second one with the same client id arrives.
    registry.disconnected(first.client);
    expect(closedSessions).toEqual(['first']);
    expect(core.registry.activity('dev').connectionState).toBe('Connected');

    await enqueue('after-takeover');
    registry.deliverTo('dev');
    expect(first.received).toEqual([]);
    expect(second.received.map((p) => p.topic)).toEqual([
      expect.stringMatching(/^devices\/dev\/messages\/devicebound\/%24.mid=after-takeover&/),
    ]);
    expect(second.received[0]?.messageId).toBe(1);

    registry.disconnected(second.client);
    expect(core.registry.activity('dev').connectionState).toBe('Disconnected');
  });

  it('drops the registered connection once the device is disabled', async () => {
    const device = standIn('device');
    connect(device);
    registry.recheck('dev');
    expect(device.closes).toBe(0);
    await core.registry.update('dev', { status: 'disabled' });
    registry.recheck('dev');
    expect(device.closes).toBe(1);
    expect(registry.wasDroppedByUs(device.client)).toBe(true);
  });
});

describe('DirectPublisher', () => {
  it('forwards only the packet it is publishing, only to its own client', () => {
    const target = standIn('target');
    const other = standIn('other');
    const packet = {
      cmd: 'publish',
      topic: 't',
      payload: Buffer.alloc(0),
      qos: 1,
    } as PublishPacket;
    // Something published through the broker (not by the publisher) reaches no device.
    expect(publisher.authorizeForward(target.client, { ...packet })).toBeNull();
    publisher.publish(target.client, 't', Buffer.from('p'), 1, 7);
    expect(target.received).toEqual([expect.objectContaining({ topic: 't', messageId: 7 })]);
    expect(publisher.authorizeForward(other.client, { ...packet })).toBeNull();
  });
});
