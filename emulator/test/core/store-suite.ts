/**
 * Support for the abstract core/store suite: each core area's tests (registry, C2D queues,
 * feedback, D2C partitions) run once against the in-memory store and once against the durable
 * store (in a temp dir), so both stores are held to the same behaviour. Time is a FakeClock
 * throughout; nothing sleeps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../core/clock';
import type { C2DMessageInput, FeedbackRecord, TelemetryInput } from '../../core/contracts';
import { HubError } from '../../core/contracts';
import type { CreateCoreOptions, InspectableCore } from '../../core/create-core';
import { createCore } from '../../core/create-core';

export const HOUR = 60 * 60 * 1000;
/** The feedback batch delay every core of the suite is opened with. */
export const BATCH_DELAY = 1000;

/** What an area's tests see: the current test's clock and core, read when the test runs. */
export interface CoreContext {
  /** A new FakeClock for each test. */
  readonly clock: FakeClock;
  /** The core opened for this test (or the last one `open` made). */
  readonly core: InspectableCore;
  /** Opens another core on the same clock and store kind; the test closes the one before. */
  open(options?: CreateCoreOptions): Promise<InspectableCore>;
}

type CoreFactory = (options: CreateCoreOptions) => Promise<InspectableCore>;

/** Defines `area` once per store: `core (<store> store) > <area>`. */
export function describeOnEachStore(area: string, body: (context: CoreContext) => void): void {
  describeOnStore('in-memory', inMemory, area, body);
  describeOnStore('durable', durableInTempDirs, area, body);
}

/** `store` says which store it is; `setUp` runs in its describe and gives its core factory. */
function describeOnStore(
  store: string,
  setUp: () => CoreFactory,
  area: string,
  body: (context: CoreContext) => void,
): void {
  describe(`core (${store} store)`, () => {
    const context = openEachTest(setUp());
    describe(area, () => body(context));
  });
}

function inMemory(): CoreFactory {
  return (options) => createCore(options);
}

/** Each core in a temp dir of its own; the dirs go once the store's tests are done. */
function durableInTempDirs(): CoreFactory {
  const dataDirs: string[] = [];
  afterAll(() => {
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  });
  return (options) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'iothub-core-'));
    dataDirs.push(dataDir);
    return createCore({ ...options, dataDir });
  };
}

/** A fresh clock and core before each test, closed after it. */
function openEachTest(factory: CoreFactory): CoreContext {
  let clock: FakeClock | undefined;
  let core: InspectableCore | undefined;
  const context: CoreContext = {
    get clock() {
      return clock!;
    },
    get core() {
      return core!;
    },
    async open(options = {}) {
      core = await factory({ clock, feedbackBatchDelayMs: BATCH_DELAY, ...options });
      return core;
    },
  };
  beforeEach(async () => {
    clock = new FakeClock();
    await context.open();
  });
  afterEach(async () => {
    await core!.close();
  });
  return context;
}

export async function expectHubError(
  promise: Promise<unknown>,
  code: HubError['code'],
): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(HubError);
  await expect(promise).rejects.toMatchObject({ code });
}

export function c2dInput(overrides: Partial<C2DMessageInput> = {}): C2DMessageInput {
  return { ack: 'none', properties: {}, body: Buffer.from('hello'), ...overrides };
}

export function telemetry(deviceId: string, text = 'reading'): TelemetryInput {
  return {
    deviceId,
    body: Buffer.from(text),
    properties: { kind: 'test' },
    generationId: '1',
    authMethod: '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
  };
}

/** Every record in every closed batch, taking and settling them. */
export async function drainFeedback(core: InspectableCore): Promise<FeedbackRecord[]> {
  const records: FeedbackRecord[] = [];
  for (let batch = core.feedback.take(); batch; batch = core.feedback.take()) {
    records.push(...batch.records);
    await core.feedback.settle(batch.batchId);
  }
  return records;
}
