/**
 * A second surface served on the service surface's AMQP connections. Clients that only speak TLS
 * and always dial 5671 (Python `azure-eventhub` ignores `UseDevelopmentEmulator` and any port in
 * `Endpoint`) reach the Event Hub-compatible endpoint on the AMQPS ports, where IoT Hub's service
 * and device links also arrive. One connection may carry both: links are told apart by address
 * (`<hub>/ConsumerGroups/…`, `$management`) and `$cbs` put-tokens by audience (`sb://host/<hub>…`).
 */
import type { Duplex } from 'node:stream';
import type { Connection } from 'rhea';
import type { CbsGrant, PutTokenRequest } from './cbs';

export interface SharedSurface {
  /** Called once for every accepted connection, before any link can attach. */
  join(connection: Connection, socket: Duplex): SharedSession;
}

export interface SharedSession {
  /** True for link addresses this surface serves; the service adapter leaves those links alone. */
  ownsAddress(address: string | undefined): boolean;
  /**
   * Verifies a put-token whose audience belongs to this surface and returns the grant, or
   * `undefined` for an audience it does not own. Throws a `HubError` for a refused token.
   */
  verify(request: PutTokenRequest): CbsGrant | undefined;
  /** True for grants `verify` issued: they authorize nothing on the service surface. */
  ownsGrant(grant: CbsGrant): boolean;
}
