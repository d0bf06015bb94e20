/** A tiny listener set; a throwing listener must not break the core or the other listeners. */
export class Listeners<Args extends unknown[]> {
  private readonly listeners = new Set<(...args: Args) => void>();

  add(listener: (...args: Args) => void): () => void {
    // Wrapped so the same function can be registered twice and removed independently.
    const entry = (...args: Args): void => listener(...args);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  emit(...args: Args): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(...args);
      } catch (error) {
        // Listeners are adapters; the core's state is already consistent, so report and go on.
        console.error('core listener failed:', error);
      }
    }
  }
}
