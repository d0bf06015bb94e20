/**
 * Bounded polling for tests that watch another process (emulator, Functions host, stack): a fake
 * clock cannot reach across a process boundary, so these tests poll with a deadline instead.
 */

/** Returns the awaited value once it is there, or `undefined` to be asked again. */
export type Probe<T> = () => T | undefined | Promise<T | undefined>;

/**
 * Polls `probe` every `intervalMs` until it returns a value (not `undefined`), and fails naming
 * `what` once `timeoutMs` has passed.
 */
export async function until<T>(
  what: string,
  probe: Probe<T>,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
