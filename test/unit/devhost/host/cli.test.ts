/**
 * devhost as a child process (`node dist/devhost/host/cli.js`), the way the stack runs it: the real
 * require interception, HTTP over a socket, timers on the wall clock (bounded waits), signals.
 * Needs `npm run build` first.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { until } from '../../../support/wait';
import { readJsonLines, startNode, type NodeChild } from '../../../support/processes';

const root = resolve(__dirname, '..', '..', '..', '..');
const cli = join(root, 'dist', 'devhost', 'host', 'cli.js');
const fixture = join(root, 'test', 'fixtures', 'devhost-app');

function startCli(args: string[], env: Record<string, string> = {}): NodeChild {
  return startNode(cli, args, {
    env: { ...process.env, LOCAL_FUNCTION_KEY: '', LOCAL_MASTER_KEY: '', ...env },
  });
}

async function startHostProcess(dataDir: string, env: Record<string, string> = {}) {
  const child = startCli(['--app', fixture, '--port', '0', '--data', dataDir], env);
  const url = await until(
    'host start',
    () => /Host started: (http:\/\/\S+)/.exec(child.output())?.[1],
  );
  const key = await until(
    'function key',
    () => /Function key \(.*\): (\S+)/.exec(child.output())?.[1],
  );
  const keys = JSON.parse(readFileSync(join(dataDir, 'keys.json'), 'utf8')) as {
    masterKey: string;
  };
  return { child, url, key, masterKey: keys.masterKey };
}

describe('devhost CLI: HTTP', () => {
  let dataDir: string;
  let host: Awaited<ReturnType<typeof startHostProcess>>;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devhost-cli-'));
    host = await startHostProcess(dataDir, { FIXTURE_OVERRIDDEN: 'from-environment' });
  });

  afterAll(async () => {
    host.child.process.kill('SIGTERM');
    await host.child.exited;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('converts requests and responses like the host (params, query, headers, body bytes, cookies, status)', async () => {
    const body = Buffer.from([0, 255, 1, 2, 128]);
    const response = await fetch(`${host.url}/api/echo/42/a/b%20c?x=1&x=2&status=201`, {
      method: 'POST',
      headers: {
        'x-functions-key': host.key,
        'content-type': 'application/octet-stream',
        'X-Custom': 'Value',
      },
      body,
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('x-echo')).toBe('yes');
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.getSetCookie()).toEqual([
      'session=abc; path=/; max-age=60; samesite=strict; httponly',
    ]);
    const echoed = (await response.json()) as Record<string, unknown>;
    expect(echoed).toMatchObject({
      method: 'POST',
      url: `${host.url}/api/echo/42/a/b%20c?x=1&x=2&status=201`,
      params: { id: '42', rest: 'a/b c' },
      query: { x: '1,2', status: '201' },
      bodyBase64: body.toString('base64'),
      greeting: 'from-local-settings',
      overridden: 'from-environment',
    });
    expect(echoed.headers).toMatchObject({
      'x-custom': 'Value',
      'content-type': 'application/octet-stream',
    });
  });

  it('checks keys from the header or the code query parameter', async () => {
    const echo = `${host.url}/api/echo/1/x`;
    expect((await fetch(echo)).status).toBe(401);
    expect((await fetch(`${echo}?code=wrong`)).status).toBe(401);
    expect((await fetch(`${echo}?code=${encodeURIComponent(host.key)}`)).status).toBe(200);
    expect((await fetch(echo, { headers: { 'x-functions-key': host.masterKey } })).status).toBe(
      200,
    );
    expect(
      (await fetch(`${host.url}/api/admin-only`, { headers: { 'x-functions-key': host.key } }))
        .status,
    ).toBe(401);
    const admin = await fetch(`${host.url}/api/admin-only`, {
      headers: { 'x-functions-key': host.masterKey },
    });
    expect(admin.status).toBe(200);
    expect(await admin.text()).toBe('admin ok');
    expect((await fetch(`${host.url}/api/health`)).status).toBe(200);
  });

  it('answers 404 for unknown routes, 405 for wrong methods, and prefers literal routes', async () => {
    expect((await fetch(`${host.url}/api/nope`)).status).toBe(404);
    expect((await fetch(`${host.url}/health`)).status).toBe(404);
    expect((await fetch(`${host.url}/api/echo/notanint/x?code=${host.key}`)).status).toBe(404);
    const wrong = await fetch(`${host.url}/api/health`, { method: 'DELETE' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
    expect(await (await fetch(`${host.url}/api/items/special`)).json()).toEqual({ special: true });
    expect(await (await fetch(`${host.url}/api/items/other`)).json()).toEqual({ name: 'other' });
    expect(await (await fetch(`${host.url}/api/items`)).json()).toEqual({ name: null });
    expect((await fetch(`${host.url}/api/nothing`)).status).toBe(204);
  });

  it('turns a throwing handler into a 500 problem and logs the failure instead', async () => {
    const response = await fetch(`${host.url}/api/boom`);
    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const text = await response.text();
    expect(JSON.parse(text)).toMatchObject({
      status: 500,
      detail: expect.stringContaining("'boom'"),
    });
    expect(text).not.toContain('internal detail');
    await until('failure log', () =>
      /Executed 'boom' \(Failed, Id=[0-9a-f-]{36}/.test(host.child.output()) ? true : undefined,
    );
    expect(host.child.output()).toContain('internal detail');
  });

  it('runs appStart, preInvocation and postInvocation hooks', async () => {
    const response = await fetch(`${host.url}/api/hooked`);
    expect(await response.json()).toEqual({ fromHook: true, appStarted: true });
    expect(response.headers.get('x-post-hook')).toBe('ran');
  });

  it('logs one line per invocation and the handler log lines, never the key', async () => {
    await fetch(`${host.url}/api/logs`);
    const output = await until('invocation line', () => {
      const text = host.child.output();
      return /Executed 'logs' \(Succeeded, Id=([0-9a-f-]{36}), Duration=[\d.]+ms\)/.test(text)
        ? text
        : undefined;
    });
    const id = /Executed 'logs' \(Succeeded, Id=([0-9a-f-]{36})/.exec(output)?.[1] ?? '';
    expect(output).toContain(`handler log line ${id}`);
    expect(output).toMatch(/logs \([0-9a-f]{8}\): warning: handler warning line/);
    expect(output).not.toContain(host.masterKey);
    expect(output.split(host.key)).toHaveLength(2); // printed once, at start
  });
});

describe('devhost CLI: lifecycle', () => {
  it('finishes in-flight requests on SIGTERM and exits 0', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devhost-cli-'));
    try {
      const host = await startHostProcess(dataDir);
      const pending = fetch(`${host.url}/api/slow?ms=800`);
      await until('request in flight', () =>
        host.child.output().includes('slow request started') ? true : undefined,
      );
      host.child.process.kill('SIGTERM');
      const response = await pending;
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('finished');
      expect(await host.child.exited).toBe(0);
      expect(host.child.output()).toContain('devhost stopped');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('exits non-zero naming a busy port', async () => {
    const blocker = createServer();
    await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
    const port = (blocker.address() as AddressInfo).port;
    const dataDir = mkdtempSync(join(tmpdir(), 'devhost-cli-'));
    try {
      const child = startCli(['--app', fixture, '--port', String(port), '--data', dataDir]);
      expect(await child.exited).toBe(1);
      expect(child.output()).toContain(`port ${port} on 127.0.0.1 is already in use`);
    } finally {
      blocker.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('exits non-zero naming a malformed local.settings.json, without printing its values', async () => {
    const appDir = mkdtempSync(join(tmpdir(), 'devhost-app-'));
    try {
      writeFileSync(join(appDir, 'package.json'), '{"main": "index.js"}');
      writeFileSync(join(appDir, 'local.settings.json'), '{"Values": {"SECRET": "s3cr3t-value",}}');
      const child = startCli(['--app', appDir, '--port', '0', '--data', join(appDir, 'data')]);
      expect(await child.exited).toBe(1);
      expect(child.output()).toMatch(/local\.settings\.json .* is not valid JSON/);
      expect(child.output()).not.toContain('s3cr3t-value');
    } finally {
      rmSync(appDir, { recursive: true, force: true });
    }
  });
});

describe('devhost CLI: timers', () => {
  it('runs NCRONTAB timers with the library input, never overlapping, and on demand', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devhost-cli-'));
    const out = mkdtempSync(join(tmpdir(), 'devhost-out-'));
    try {
      const host = await startHostProcess(dataDir, {
        FIXTURE_OUT_DIR: out,
        TICK_SCHEDULE: '*/1 * * * * *',
        'AzureWebJobs.tick.Disabled': 'false',
        'AzureWebJobs.slowTick.Disabled': 'false',
      });
      const ticks = await until('two ticks', () => {
        const lines = readJsonLines(join(out, 'tick.jsonl'));
        return lines.length >= 2 ? lines : undefined;
      });
      expect(ticks[0]?.timer).toMatchObject({
        isPastDue: false,
        schedule: { adjustForDST: true },
        scheduleStatus: {
          last: expect.any(String),
          next: expect.any(String),
          lastUpdated: expect.any(String),
        },
      });
      expect(ticks[0]?.retryContext).toBeNull();

      const slow = await until('two slow runs', () => {
        const lines = readJsonLines(join(out, 'slow.jsonl'));
        return lines.filter((l) => l.event === 'end').length >= 2 ? lines : undefined;
      });
      // Each run ends before the next one starts, although it lasts longer than the period.
      const events = slow.map((l) => l.event);
      expect(events.slice(0, 4)).toEqual(['start', 'end', 'start', 'end']);

      const before = readJsonLines(join(out, 'tick.jsonl')).length;
      const manual = await fetch(`${host.url}/admin/functions/tick`, {
        method: 'POST',
        headers: { 'x-functions-key': host.masterKey, 'content-type': 'application/json' },
        body: '{"input":""}',
      });
      expect(manual.status).toBe(202);
      await until('manual tick', () =>
        readJsonLines(join(out, 'tick.jsonl')).length > before ? true : undefined,
      );
      expect((await fetch(`${host.url}/admin/functions/tick`, { method: 'POST' })).status).toBe(
        401,
      );

      host.child.process.kill('SIGINT');
      expect(await host.child.exited).toBe(0);
      expect(existsSync(join(dataDir, 'timers', 'tick.json'))).toBe(true);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  });
});
