/**
 * The device explorer's control panels against the local stack: a direct method answered by a
 * simulated device (SetTelemetryInterval), desired properties acknowledged in its reported
 * properties, and a concurrent twin change shown as a conflict instead of being overwritten.
 * Needs the twin and method routes (issue 12).
 */
import type { Page } from 'playwright-core';
import {
  Api,
  asRecord,
  createStackDataDir,
  startStackProcess,
  tearDownStack,
  waitFor,
  type StackProcess,
} from '../e2e/support';
import { launchBrowser, screenshot, type Browser } from './support';

jest.setTimeout(180_000);

let dataDir: string;
let stack: StackProcess | undefined;
let browser: Browser;
let page: Page;
let api: Api;

beforeAll(async () => {
  dataDir = createStackDataDir('browser-control-');
  stack = await startStackProcess(dataDir, {
    SIMULATOR_SCHEDULE: '*/2 * * * * *',
    SIMULATOR_DEVICE_COUNT: '1',
  });
  api = new Api(stack.apiUrl, stack.functionKey);
  browser = await launchBrowser();
  page = await browser.newPage();
  // The printed URL, with the device to open added to the fragment.
  const printed = stack.lines().find((line) => line.startsWith('  Device explorer:')) ?? '';
  const url = /(http:\/\/\S+)/.exec(printed)?.[1] ?? '';
  await page.goto(`${url}&device=sim-1`);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await tearDownStack({ stack, dataDir });
}, 90_000);

afterEach(() => {
  expect(browser.pageErrors).toEqual([]);
});

async function textOf(selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent()) ?? '';
}

async function waitForText(what: string, selector: string, pattern: RegExp): Promise<string> {
  return waitFor(
    what,
    async () => {
      const text = await textOf(selector);
      return pattern.test(text) ? text : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

describe('the device explorer controls', () => {
  it('invokes SetTelemetryInterval and shows the device answer', async () => {
    expect(await textOf('#device-title')).toBe('sim-1');
    // The device is connected once its first report is in the twin.
    await waitForText('the reported interval', '#twin-reported', /telemetryIntervalSeconds/);
    await page.getByLabel('Method name').fill('SetTelemetryInterval');
    await page.getByLabel('Payload (JSON)').fill('3');
    await page.getByRole('button', { name: 'Invoke method' }).click();
    await waitForText('the method answer', '#method-answer-status', /^200$/);
    // A bad value: the device answers 400, which the page shows as the device's status.
    await page.getByLabel('Payload (JSON)').fill('-1');
    await page.getByRole('button', { name: 'Invoke method' }).click();
    await waitForText('the refusal', '#method-answer-status', /^400$/);
  });

  it("shows the device's answer to a method it does not know", async () => {
    await page.getByLabel('Method name').fill('NoSuchMethod');
    await page.getByLabel('Payload (JSON)').fill('');
    await page.getByRole('button', { name: 'Invoke method' }).click();
    await waitForText('the answer', '#method-answer-status', /^404$/);
  });

  it('changes a desired property (the device reported since it was loaded) and sees the device acknowledge it', async () => {
    await page.getByLabel(/Desired properties/).fill('{"telemetryIntervalSeconds": 4}');
    await page.getByRole('button', { name: 'Save desired' }).click();
    await waitForText('the save', '#twin-status', /^Saved: desired version \d+/);
    await waitForText(
      'the acknowledgement',
      '#twin-reported',
      /"telemetryIntervalSeconds": \{[^}]*"value": 4[^}]*"ac": 200/s,
    );
    await screenshot(page, 'explorer-control-laptop');
  });

  it('shows a concurrent change as a conflict and overwrites nothing', async () => {
    const other = await api.call('PATCH', '/devices/sim-1/twin', {
      json: { desired: { owner: 'someone-else' } },
      headers: { 'if-match': '*' },
    });
    expect(other.status).toBe(200);
    // The editor still holds the etag it was loaded with.
    await page.getByLabel(/Desired properties/).fill('{"owner": "explorer"}');
    await page.getByRole('button', { name: 'Save desired' }).click();
    await waitForText('the conflict', '#twin-problem', /etag|changed/i);
    expect(await textOf('#twin-status')).toMatch(/nothing was overwritten/);
    const twin = asRecord((await api.get('/devices/sim-1/twin')).body);
    expect(asRecord(asRecord(twin.desired).properties).owner).toBe('someone-else');
    // Reload shows the other change; saving then succeeds.
    await page.getByRole('button', { name: 'Reload' }).click();
    await waitFor('the reloaded desired properties', async () =>
      (await page.getByLabel(/Desired properties/).inputValue()).includes('someone-else')
        ? true
        : undefined,
    );
  });
});
