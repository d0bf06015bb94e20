/**
 * The device explorer in headless Chromium against the whole local stack (`npm start`'s stack on
 * ephemeral ports): the URL the stack prints opens the page ready to use, the simulator's devices
 * are listed, the chart grows by itself, a C2D message is seen delivered, devices are created and
 * deleted, API problems are shown, and the layout works on a phone. Screenshots go to
 * test-artifacts/.
 */
import type { Page } from 'playwright-core';
import {
  createStackDataDir,
  startStackProcess,
  tearDownStack,
  waitFor,
  type StackProcess,
} from '../e2e/support';
import { launchBrowser, phone, screenshot, type Browser } from './support';

jest.setTimeout(180_000);

const simulatorDevices = ['sim-1', 'sim-2', 'sim-3'];

let dataDir: string;
let stack: StackProcess | undefined;
let browser: Browser;
let explorerUrl: string;

beforeAll(async () => {
  dataDir = createStackDataDir('browser-explorer-');
  stack = await startStackProcess(dataDir, {
    SIMULATOR_SCHEDULE: '*/2 * * * * *',
    SIMULATOR_DEVICE_COUNT: String(simulatorDevices.length),
    FEEDBACK_SCHEDULE: '*/2 * * * * *',
    FEEDBACK_DRAIN_SECONDS: '1',
  });
  const printed = stack.lines().find((line) => line.startsWith('  Device explorer:'));
  explorerUrl = /(http:\/\/\S+)/.exec(printed ?? '')?.[1] ?? '';
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await tearDownStack({ stack, dataDir });
}, 90_000);

afterEach(() => {
  // No uncaught script error and no Content-Security-Policy violation on any page.
  expect(browser.pageErrors).toEqual([]);
});

/** The text of the first element matching `selector`, '' when there is none. */
async function textOf(page: Page, selector: string): Promise<string> {
  const locator = page.locator(selector).first();
  return (await locator.count()) > 0 ? ((await locator.textContent()) ?? '') : '';
}

async function listedDevices(page: Page): Promise<string[]> {
  // One read of all rows (the list re-renders as it refreshes): each row's id is its button.
  return page.locator('#device-rows tr th button').allTextContents();
}

// The page's own globals, evaluated as expressions (this project's types have no DOM).
const storedKeys = 'Object.keys(sessionStorage)';
const pageWidth = 'document.documentElement.scrollWidth';
const focusedLabel = "document.activeElement?.getAttribute('aria-label') ?? null";

async function waitForDevices(page: Page, ids: string[], present = true): Promise<void> {
  await waitFor(`devices ${ids.join(', ')} ${present ? 'listed' : 'gone'}`, async () => {
    const listed = await listedDevices(page);
    return ids.every((id) => listed.includes(id) === present) ? true : undefined;
  });
}

/** Form controls (of both views) that have neither a <label for> nor an aria-label. */
async function unlabelledControls(page: Page): Promise<string[]> {
  const controls = page.locator('input, select, textarea');
  const missing: string[] = [];
  for (let i = 0; i < (await controls.count()); i += 1) {
    const control = controls.nth(i);
    const id = (await control.getAttribute('id')) ?? '';
    const labels = id ? await page.locator(`label[for="${id}"]`).count() : 0;
    if (labels === 0 && !(await control.getAttribute('aria-label'))) missing.push(id || `#${i}`);
  }
  return missing;
}

async function chartPoints(page: Page): Promise<number> {
  return Number(await page.locator('#chart').getAttribute('data-points'));
}

describe('the device explorer', () => {
  let page: Page;

  it('opens ready to use from the URL npm start prints, and takes the key out of the address bar', async () => {
    expect(explorerUrl).toMatch(/\/api\/explorer\/#key=/);
    page = await browser.newPage();
    await page.goto(explorerUrl);
    await waitForDevices(page, simulatorDevices);
    expect(page.url()).not.toContain('key=');
    expect(await page.evaluate<string[]>(storedKeys)).toEqual(['iot-hub-explorer.functionKey']);
    await waitFor('the latest windSpeed of sim-1', async () => {
      const cell = await textOf(page, '#device-rows tr[data-device="sim-1"] td:nth-of-type(4)');
      return /^\d+\.\d\d$/.test(cell) ? cell : undefined;
    });
    await screenshot(page, 'explorer-devices-laptop');
  });

  it('asks for the key in a new tab, shows a refused key, and lists devices with the right one', async () => {
    const fresh = await browser.newPage();
    await fresh.goto(explorerUrl.replace(/#.*$/, ''));
    expect(await textOf(fresh, '#key-state')).toMatch(/No key yet/);
    await fresh.getByLabel('Function key').fill('not-the-key');
    await fresh.getByRole('button', { name: 'Use key' }).click();
    // The local host answers a problem+json; Azure's host an empty 401, which the page names.
    await waitFor('the refused key to be reported', async () =>
      /A valid function key is required|The function key was refused/.test(
        await textOf(fresh, '#devices-problem'),
      )
        ? true
        : undefined,
    );
    await fresh.getByRole('button', { name: 'Forget key' }).click();
    await fresh.getByLabel('Function key').fill(stack!.functionKey);
    await fresh.getByLabel('Function key').press('Enter');
    await waitForDevices(fresh, simulatorDevices);
    expect(await fresh.locator('#devices-problem').isHidden()).toBe(true);
    await fresh.close();
  });

  it('labels every form control', async () => {
    expect(await unlabelledControls(page)).toEqual([]);
  });

  it('filters the list by id', async () => {
    await page.getByLabel('Filter by id').fill('SIM-2');
    await waitFor('only sim-2 listed', async () =>
      (await listedDevices(page)).join() === 'sim-2' ? true : undefined,
    );
    await page.getByLabel('Filter by id').fill('');
    await waitForDevices(page, simulatorDevices);
  });

  it('creates a device (connection string shown once), then deletes it after confirmation', async () => {
    await page.getByLabel(/New device id/).fill('explorer-made');
    await page.getByRole('button', { name: 'Create device' }).click();
    await waitForDevices(page, ['explorer-made']);
    expect(await page.getByLabel('Connection string').inputValue()).toMatch(
      /^HostName=[^;]+;DeviceId=explorer-made;SharedAccessKey=\S+$/,
    );
    await page.getByRole('button', { name: 'Disable explorer-made' }).click();
    await waitFor('explorer-made disabled', async () =>
      (await textOf(page, '#device-rows tr[data-device="explorer-made"] td')) === 'disabled'
        ? true
        : undefined,
    );
    await page.getByRole('button', { name: 'Delete explorer-made' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await listedDevices(page)).toContain('explorer-made');
    await page.getByRole('button', { name: 'Delete explorer-made' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await waitForDevices(page, ['explorer-made'], false);
  });

  it("shows the API's problem title and detail", async () => {
    await page.getByLabel(/New device id/).fill('bad id!');
    await page.getByRole('button', { name: 'Create device' }).click();
    await waitFor('the problem to be shown', async () =>
      /The device id does not follow IoT Hub rules/.test(await textOf(page, '#action-problem'))
        ? true
        : undefined,
    );
    expect(await textOf(page, '#action-problem .problem-detail')).toMatch(/deviceId/);
    // The list refreshes every 5 s; the problem stays until the next action.
    const refreshes = async () =>
      Number(await page.locator('#device-rows').getAttribute('data-refreshes'));
    const seen = await refreshes();
    await waitFor('a list refresh', async () => ((await refreshes()) > seen ? true : undefined), {
      timeoutMs: 15_000,
    });
    expect(await textOf(page, '#action-problem')).toMatch(/does not follow IoT Hub rules/);
  });

  it('keeps keyboard focus on the same control when the list refreshes', async () => {
    const button = page.getByRole('button', { name: 'Disable sim-2', exact: true });
    await button.focus();
    const refreshes = async () =>
      Number(await page.locator('#device-rows').getAttribute('data-refreshes'));
    const seen = await refreshes();
    await waitFor('a list refresh', async () => ((await refreshes()) > seen ? true : undefined), {
      timeoutMs: 15_000,
    });
    expect(await page.evaluate<string | null>(focusedLabel)).toBe('Disable sim-2');
  });

  it("charts a device's windSpeed as it arrives, with the alert threshold", async () => {
    // By keyboard: the device id is a button in the list.
    await page.getByRole('button', { name: 'sim-1', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/#device=sim-1$/);
    await waitFor('the first points', async () =>
      (await chartPoints(page)) > 0 ? true : undefined,
    );
    const before = await chartPoints(page);
    await waitFor('more points without reloading', async () =>
      (await chartPoints(page)) >= before + 2 ? true : undefined,
    );
    await waitFor('the threshold', async () =>
      /^\d+(\.\d+)? m\/s$/.test(await textOf(page, '#threshold')) ? true : undefined,
    );
    expect(await page.locator('#chart').getAttribute('aria-label')).toMatch(
      /latest \d+\.\d\d m\/s/,
    );
    expect(await page.locator('#reading-rows tr').count()).toBeGreaterThan(0);
  });

  it('sends a cloud-to-device message and shows it delivered', async () => {
    await page.getByLabel(/^Payload \(JSON, or text\)/).fill('{"command":"blink"}');
    await page.getByLabel(/^Properties/).fill('source=explorer');
    await page.getByLabel('Acknowledgement').selectOption('full');
    await page.getByRole('button', { name: 'Send message' }).click();
    await waitFor(
      'the message to be delivered',
      async () => ((await textOf(page, '#c2d-log li .badge')) === 'delivered' ? true : undefined),
      { timeoutMs: 60_000 },
    );
    await screenshot(page, 'explorer-device-laptop');
  });

  it('is usable at phone width', async () => {
    await page.setViewportSize(phone);
    await waitFor('the chart to fit the phone', async () => {
      const box = await page.locator('#chart canvas').boundingBox();
      return box && box.width <= phone.width ? true : undefined;
    });
    const width = await page.evaluate<number>(pageWidth);
    expect(width).toBeLessThanOrEqual(phone.width);
    await screenshot(page, 'explorer-device-phone');
    await page.getByRole('link', { name: /All devices/ }).click();
    await waitForDevices(page, simulatorDevices);
    expect(await page.evaluate<number>(pageWidth)).toBeLessThanOrEqual(phone.width);
    await screenshot(page, 'explorer-devices-phone');
  });
});
