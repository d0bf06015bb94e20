/**
 * One AMQP service client per Functions instance, opened on first use and reused by every
 * invocation (connections to IoT Hub are costly and limited). When the connection drops or an
 * operation fails for connection reasons, it is discarded and the next call opens a new one.
 */
import type { ServiceClient } from '../iothub/clients';
import { hubErrorToApiError } from '../http/hub-errors';
import { withHubTimeout } from '../iothub/errors';

export const defaultOpenTimeoutMs = 15_000;

export class SharedServiceClient {
  private current: Promise<ServiceClient> | undefined;

  constructor(
    private readonly create: () => ServiceClient,
    private readonly openTimeoutMs = defaultOpenTimeoutMs,
  ) {}

  /** The open client, opening one if needed. */
  get(): Promise<ServiceClient> {
    if (this.current) return this.current;
    const client = this.create();
    const opening = withHubTimeout(
      'Opening the IoT Hub service connection',
      this.openTimeoutMs,
      client.open(),
    ).then(() => client);
    client.onDisconnect(() => this.forget(opening));
    opening.catch(() => {
      this.forget(opening);
      client.close().catch(() => undefined);
    });
    this.current = opening;
    return opening;
  }

  /** Run `operation` on the client; connection failures make the next call reconnect. */
  async use<T>(operation: (client: ServiceClient) => Promise<T>): Promise<T> {
    const pending = this.get();
    const client = await pending;
    try {
      return await operation(client);
    } catch (error) {
      const kind = hubErrorToApiError(error, 'The device')?.kind;
      if (kind === 'hubUnavailable' || kind === 'hubAccessDenied') {
        this.forget(pending);
        client.close().catch(() => undefined);
      }
      throw error;
    }
  }

  /** Close the client (tests and shutdown). */
  async close(): Promise<void> {
    const pending = this.current;
    this.current = undefined;
    if (!pending) return;
    const client = await pending.catch(() => undefined);
    await client?.close().catch(() => undefined);
  }

  private forget(which: Promise<ServiceClient>): void {
    if (this.current === which) this.current = undefined;
  }
}
