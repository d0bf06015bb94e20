/**
 * `--manual-clock`: a hub process whose time moves only through its loopback control endpoint
 * (`connection.json` `control.url`), so tests advance TTLs, locks and feedback batches instead of
 * sleeping. A hub started without the flag has no such endpoint.
 */
import { startEmulator, type EmulatorInstance } from '../support/emulator';
import { until } from '../support/wait';

let manual: EmulatorInstance;

beforeAll(async () => {
  manual = await startEmulator({ inMemory: true, manualClock: true });
});

afterAll(async () => {
  await manual?.stop();
});

describe('a hub process with a manual clock', () => {
  it('names its control endpoint on loopback in connection.json', () => {
    expect(manual.connection.control?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(manual.clock).toBeDefined();
  });

  it('keeps its time still while the wall clock runs, and moves it by exactly what it is told', async () => {
    const clock = manual.clock!;
    const before = await clock.now();
    const wallStart = Date.now();
    await until('the wall clock to move on', () => Date.now() - wallStart >= 50 || undefined);
    expect(await clock.now()).toBe(before);
    expect(await clock.advance(3_600_000)).toBe(before + 3_600_000);
    expect(await clock.now()).toBe(before + 3_600_000);
  });

  it('refuses an advance that is not a whole number of ms (400) and does not move', async () => {
    const url = manual.connection.control!.url;
    const before = await manual.clock!.now();
    for (const ms of ['-5', '1.5', 'soon', '']) {
      const response = await fetch(`${url}/clock/advance?ms=${ms}`, { method: 'POST' });
      expect(response.status).toBe(400);
    }
    expect((await fetch(`${url}/clock/advance?ms=5`)).status).toBe(404); // GET is not a move
    expect(await manual.clock!.now()).toBe(before);
  });
});

describe('a hub process without the flag', () => {
  it('has no control endpoint', async () => {
    const plain = await startEmulator({ inMemory: true });
    try {
      expect(plain.connection.control).toBeUndefined();
      expect(plain.clock).toBeUndefined();
    } finally {
      await plain.stop();
    }
  });
});
