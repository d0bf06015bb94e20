/**
 * Trigger providers: each turns the trigger binding an app registered (its metadata, as the
 * library sends it) into a running trigger source — an HTTP route, a timer, an Event Hub consumer.
 * The host knows bindings only through these; a new trigger type is a new provider.
 */
import type { HostConfig } from '../app-config';
import { resolveBindingExpression } from '../app-config';
import type { RegisteredFunction } from '../core-api';
import type { HttpFunction } from '../http/server';
import { HostStartError } from '../load-app';
import type { RpcBindingInfo } from '../rpc-types';
import type { HostRuntime } from '../runtime';
import type { TimerRunner } from '../timer/timer-runner';

export type Settings = Readonly<Record<string, string | undefined>>;

export interface FunctionSummary {
  name: string;
  trigger: string;
  /** For HTTP functions: methods and URL template. */
  http?: { methods: string[]; url: string; authLevel: string };
}

/** Everything a provider may use, and where it puts what it builds. */
export interface TriggerContext {
  runtime: HostRuntime;
  /** The app settings (read only): binding expressions and connection names resolve here. */
  settings: Settings;
  hostConfig: HostConfig;
  dataDir: string;
  loadBalancingIntervalMs: number;
  /** HTTP functions, served once every function is built. */
  http: HttpFunction[];
  /** Timers by lower-case name, for `POST /admin/functions/{name}`. */
  timerByName: Map<string, TimerRunner>;
}

/** One registered function and its trigger binding. */
export interface TriggeredFunction {
  fn: RegisteredFunction;
  name: string;
  triggerName: string;
  binding: RpcBindingInfo;
}

export interface TriggerProvider {
  /** Whether this provider serves the binding type (case-insensitive, as the host compares). */
  handles(type: string): boolean;
  /** Builds the trigger source into the context; returns the function's summary line. */
  build(target: TriggeredFunction, context: TriggerContext): FunctionSummary;
}

export function text(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

/** `%NAME%` expressions in a binding value, from the app settings. */
export function resolveSetting(context: TriggerContext, value: string, where: string): string {
  return resolveBindingExpression(value, context.settings, where);
}

export function triggerOf(fn: RegisteredFunction): TriggeredFunction {
  const entry = Object.entries(fn.metadata.bindings).find(([, b]) =>
    /trigger$/i.test(String(b.type)),
  );
  if (!entry) throw new HostStartError(`function "${fn.metadata.name}" has no trigger binding`);
  return { fn, name: fn.metadata.name, triggerName: entry[0], binding: entry[1] };
}
