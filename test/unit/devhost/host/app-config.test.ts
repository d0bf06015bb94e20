import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AppConfigError,
  applySettings,
  parseTimeSpanSeconds,
  readHostConfig,
  readLocalSettings,
  resolveBindingExpression,
} from '../../../../devhost/host/app-config';
import { expandBraces, findEntryFiles, globFiles } from '../../../../devhost/host/app-loader';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'devhost-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('local.settings.json', () => {
  it('is optional', () => {
    expect(readLocalSettings(dir)).toEqual({});
  });

  it('reads Values; variables already in the environment win', () => {
    writeFileSync(
      join(dir, 'local.settings.json'),
      JSON.stringify({ Values: { A: 'from-file', B: 'from-file', N: 3 } }),
    );
    const env: Record<string, string | undefined> = { A: 'from-env' };
    expect(applySettings(readLocalSettings(dir), env)).toEqual(['B', 'N']);
    expect(env).toEqual({ A: 'from-env', B: 'from-file', N: '3' });
  });

  it('names the file and the problem when malformed, never a value', () => {
    writeFileSync(join(dir, 'local.settings.json'), '{"Values": {"KEY": "secret-value",}}');
    expect(() => readLocalSettings(dir)).toThrow(AppConfigError);
    expect(() => readLocalSettings(dir)).toThrow(/local\.settings\.json .* is not valid JSON/);
    try {
      readLocalSettings(dir);
    } catch (error) {
      expect((error as Error).message).not.toContain('secret-value');
    }
    // The parser quotes the text around an unexpected token; that excerpt is left out too.
    writeFileSync(
      join(dir, 'local.settings.json'),
      '{\n  "Values": {\n    "KEY": HostName=secret-value\n  }\n}',
    );
    expect(() => readLocalSettings(dir)).toThrow(/is not valid JSON at line 3, column 12/);
    try {
      readLocalSettings(dir);
    } catch (error) {
      expect((error as Error).message).not.toContain('secret-value');
    }
    writeFileSync(join(dir, 'local.settings.json'), '{"Values": {"KEY": {"nested": true}}}');
    expect(() => readLocalSettings(dir)).toThrow('"Values.KEY" must be a string');
  });
});

describe('binding expressions', () => {
  it('resolves %SETTING% anywhere in a value', () => {
    expect(resolveBindingExpression('%HUB%', { HUB: 'local-iothub' }, 'x')).toBe('local-iothub');
    expect(resolveBindingExpression('api/%ROOT%/{id}', { ROOT: 'devices' }, 'x')).toBe(
      'api/devices/{id}',
    );
    expect(resolveBindingExpression('no expression', {}, 'x')).toBe('no expression');
  });

  it('names a missing setting and where it is used', () => {
    expect(() => resolveBindingExpression('%MISSING%', {}, 'function "f" schedule')).toThrow(
      'function "f" schedule: the app setting "MISSING" referenced as %MISSING% is not set',
    );
  });
});

describe('host.json', () => {
  it('defaults like the host when absent', () => {
    expect(readHostConfig(dir)).toEqual({
      routePrefix: 'api',
      eventHubs: {
        maxEventBatchSize: 100,
        minEventBatchSize: 1,
        maxWaitTimeSeconds: 60,
        prefetchCount: 300,
        batchCheckpointFrequency: 1,
        initialOffset: { type: 'fromStart' },
      },
    });
  });

  it('reads the route prefix and the Event Hubs batch options', () => {
    writeFileSync(
      join(dir, 'host.json'),
      JSON.stringify({
        version: '2.0',
        extensions: {
          http: { routePrefix: '' },
          eventHubs: {
            maxEventBatchSize: 25,
            maxWaitTime: '00:00:02.5',
            batchCheckpointFrequency: 2,
            initialOffsetOptions: {
              type: 'FromEnqueuedTime',
              enqueuedTimeUtc: '2026-01-01T00:00:00Z',
            },
          },
        },
      }),
    );
    const config = readHostConfig(dir);
    expect(config.routePrefix).toBe('');
    expect(config.eventHubs).toMatchObject({
      maxEventBatchSize: 25,
      maxWaitTimeSeconds: 2.5,
      batchCheckpointFrequency: 2,
      initialOffset: {
        type: 'fromEnqueuedTime',
        enqueuedTimeUtc: new Date('2026-01-01T00:00:00Z'),
      },
    });
  });

  it('rejects invalid options by name', () => {
    writeFileSync(
      join(dir, 'host.json'),
      JSON.stringify({ extensions: { eventHubs: { maxEventBatchSize: 0 } } }),
    );
    expect(() => readHostConfig(dir)).toThrow(
      'host.json extensions.eventHubs.maxEventBatchSize must be a positive integer',
    );
    expect(parseTimeSpanSeconds('1.00:00:01', 'x')).toBe(86401);
    expect(() => parseTimeSpanSeconds('5s', 'maxWaitTime')).toThrow(
      'maxWaitTime must be a TimeSpan',
    );
  });
});

describe('entry files (package.json main)', () => {
  it('expands braces and wildcards like the worker', () => {
    expect(expandBraces('dist/{functions,simulator}/*.js')).toEqual([
      'dist/functions/*.js',
      'dist/simulator/*.js',
    ]);
    mkdirSync(join(dir, 'dist', 'functions'), { recursive: true });
    mkdirSync(join(dir, 'dist', 'simulator', 'cli'), { recursive: true });
    for (const file of [
      'dist/functions/a.js',
      'dist/functions/b.js',
      'dist/functions/a.js.map',
      'dist/simulator/s.js',
      'dist/simulator/cli/x.js',
    ]) {
      writeFileSync(join(dir, file), '');
    }
    expect(
      globFiles(dir, 'dist/{functions,simulator}/*.js').map((f) => f.slice(dir.length + 1)),
    ).toEqual(['dist/functions/a.js', 'dist/functions/b.js', 'dist/simulator/s.js']);
    expect(globFiles(dir, 'dist/**/*.js')).toHaveLength(4);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ main: 'dist/{functions,simulator}/*.js' }),
    );
    expect(findEntryFiles(dir)).toHaveLength(3);
  });

  it('fails when main matches nothing', () => {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ main: 'dist/functions/*.js' }));
    expect(() => findEntryFiles(dir)).toThrow(/matches no file .* build the app first/);
  });
});
