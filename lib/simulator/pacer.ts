import { systemClock, type Clock } from '../clock';

/**
 * Paces new connections (IoT Hub S1 accepts about 100 new device connections per second per
 * unit): `take()` resolves when the next connection may start.
 */
export class Pacer {
  private next = 0;
  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock = systemClock,
  ) {}

  async take(): Promise<void> {
    const interval = 1000 / this.perSecond;
    const now = this.clock.now();
    const slot = Math.max(now, this.next);
    this.next = slot + interval;
    if (slot > now) await this.clock.sleep(slot - now);
  }
}
