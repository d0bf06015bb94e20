/** Error text for logs: the message and AMQP condition, never a payload. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const condition = (error as Error & { condition?: unknown }).condition;
    return typeof condition === 'string' ? `${condition}: ${error.message}` : error.message;
  }
  if (typeof error === 'object' && error !== null) {
    const { condition, description } = error as { condition?: unknown; description?: unknown };
    if (typeof condition === 'string') {
      return typeof description === 'string' ? `${condition}: ${description}` : condition;
    }
  }
  return String(error);
}
