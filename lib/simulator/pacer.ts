/**
 * Paces new connections (IoT Hub S1 accepts about 100 new device connections per second per
 * unit): `take()` resolves when the next connection may start.
 */
export class Pacer {
  private next = 0;
  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((resolve) => setTimeout(resolve, ms)),
  ) {}

  async take(): Promise<void> {
    const interval = 1000 / this.perSecond;
    const now = this.now();
    const slot = Math.max(now, this.next);
    this.next = slot + interval;
    if (slot > now) await this.sleep(slot - now);
  }
}
