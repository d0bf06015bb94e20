/**
 * The host's trigger providers, one binding at a time: what each builds from the metadata an app
 * registers, and the settings they read (`hostSettings`: local.settings.json < environment <
 * explicit overrides, read without writing `process.env`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readHostConfig } from '../../../../devhost/host/app-config';
import type { RegisteredFunction } from '../../../../devhost/host/core-api';
import { hostSettings } from '../../../../devhost/host/host';
import type { HostLog } from '../../../../devhost/host/log';
import { HostRuntime } from '../../../../devhost/host/runtime';
import { eventHubTrigger } from '../../../../devhost/host/triggers/eventhub';
import { httpTrigger } from '../../../../devhost/host/triggers/http';
import type { Settings, TriggerContext } from '../../../../devhost/host/triggers/provider';
import { triggerOf } from '../../../../devhost/host/triggers/provider';
import { timerTrigger } from '../../../../devhost/host/triggers/timer';

const silent: HostLog = { info() {}, warn() {}, error() {}, invocation() {} };

function registered(name: string, binding: Record<string, unknown>): RegisteredFunction {
  return {
    metadata: { name, bindings: { trigger: { direction: 'in', ...binding } } },
    callback: () => undefined,
  };
}

let dir: string;
let runtime: HostRuntime;

function context(settings: Settings): TriggerContext {
  return {
    runtime,
    settings,
    hostConfig: readHostConfig(dir),
    dataDir: join(dir, 'data'),
    loadBalancingIntervalMs: 2000,
    http: [],
    timerByName: new Map(),
  };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'devhost-triggers-'));
  runtime = new HostRuntime(silent);
});

afterEach(async () => {
  await runtime.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('hostSettings: local.settings.json under the environment under overrides, process.env untouched', () => {
  writeFileSync(
    join(dir, 'local.settings.json'),
    JSON.stringify({ Values: { ONLY_LOCAL: 'local', PATH: 'local-path', OVERRIDDEN: 'local' } }),
  );
  const before = JSON.stringify(process.env);
  const settings = hostSettings(dir, { OVERRIDDEN: 'override' });
  expect(settings.ONLY_LOCAL).toBe('local');
  expect(settings.PATH).toBe(process.env.PATH);
  expect(settings.OVERRIDDEN).toBe('override');
  expect(JSON.stringify(process.env)).toBe(before);
});

test('the HTTP provider adds a route resolved from %SETTING% expressions', () => {
  const ctx = context({ ROOT: 'things' });
  const summary = httpTrigger.build(
    triggerOf(registered('list', { type: 'httpTrigger', route: '%ROOT%/{id}', methods: ['get'] })),
    ctx,
  );
  expect(summary).toEqual({ name: 'list', trigger: 'http' });
  expect(ctx.http.map((f) => [f.route.template, [...f.methods]])).toEqual([
    ['things/{id}', ['GET']],
  ]);
});

test('the timer provider registers a runner by name, with the schedule it parsed', () => {
  const ctx = context({ EVERY: '0 */5 * * * *' });
  const summary = timerTrigger.build(
    triggerOf(registered('Tick', { type: 'timerTrigger', schedule: '%EVERY%' })),
    ctx,
  );
  expect(summary.trigger).toMatch(/^timer \(0 \*\/5 \* \* \* \*/);
  expect(ctx.timerByName.has('tick')).toBe(true);
  expect(runtime.timers).toHaveLength(1);
});

test('the Event Hub provider names the missing connection setting and builds nothing', () => {
  const ctx = context({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' });
  const target = triggerOf(
    registered('events', { type: 'eventHubTrigger', connection: 'HUB_EVENTS' }),
  );
  expect(eventHubTrigger.handles('EventHubTrigger')).toBe(true);
  expect(() => eventHubTrigger.build(target, ctx)).toThrow(
    'function "events": the Event Hub connection setting "HUB_EVENTS" is not set',
  );
  expect(runtime.listeners).toHaveLength(0);
});

test('a function without a trigger binding is refused by name', () => {
  const fn: RegisteredFunction = {
    metadata: { name: 'lonely', bindings: { out: { type: 'http', direction: 'out' } } },
    callback: () => undefined,
  };
  expect(() => triggerOf(fn)).toThrow('function "lonely" has no trigger binding');
});
