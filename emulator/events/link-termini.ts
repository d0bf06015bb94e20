/**
 * Completing the attaches a client starts on the Event Hub-compatible endpoint: termini and link
 * names kept encodable whatever the peer sent, settle modes and properties echoed as Event Hubs
 * does.
 */
import type { Receiver, Sender } from 'rhea';

export const epochProperty = 'com.microsoft:epoch';

/**
 * A terminus address as a string. Anything the peer sent that is not one becomes '' — rhea
 * encodes our attach later, outside any handler, where a non-string would throw.
 */
export function addressOf(terminus: unknown): string {
  if (typeof terminus !== 'object' || terminus === null) return '';
  const address: unknown = (terminus as { address?: unknown }).address;
  return typeof address === 'string' ? address : '';
}

/** rhea echoes the peer's link name in our attach; keep it encodable whatever was sent. */
export function sanitizeLinkName(link: Sender | Receiver): void {
  const local = (link as unknown as { local: { attach: { name?: unknown } } }).local.attach;
  if (typeof local.name !== 'string') local.name = String(local.name);
}

export function asStringArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  if (typeof value === 'string') return [value];
  return [];
}

/** The `com.microsoft:epoch` link property: absent, a safe integer, or not an epoch at all. */
export function readEpoch(properties: unknown): number | undefined | 'invalid' {
  if (typeof properties !== 'object' || properties === null) return undefined;
  const entry = Object.entries(properties as Record<string, unknown>).find(
    ([key]) => key === epochProperty,
  );
  if (!entry) return undefined;
  const value: unknown = entry[1];
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  // A long beyond 2^53 arrives as a Buffer; any other form is not an epoch.
  if (Buffer.isBuffer(value) && value.length === 8) return Number(value.readBigInt64BE());
  return 'invalid';
}

/** Completes our side of an attach the client started: echo the termini, presettle when asked. */
export function acceptSender(sender: Sender, offeredCapabilities: string[]): void {
  sender.set_source({ address: addressOf(sender.source) });
  if (sender.target) sender.set_target({ address: addressOf(sender.target) });
  const local = (sender as unknown as { local: { attach: Record<string, unknown> } }).local.attach;
  // Event Hubs never redelivers; pre-settle unless the client insists on unsettled transfers.
  local.snd_settle_mode = sender.snd_settle_mode === 0 ? 0 : 1;
  // Event Hubs echoes the link properties (epoch, receiver name); Python azure-eventhub merges
  // the reply's properties into its own and fails on a reply without them.
  const remoteProperties: unknown = sender.properties;
  if (typeof remoteProperties === 'object' && remoteProperties !== null) {
    local.properties = remoteProperties;
  }
  if (offeredCapabilities.length > 0) local.offered_capabilities = offeredCapabilities;
}

export function acceptReceiver(receiver: Receiver): void {
  receiver.set_target({ address: addressOf(receiver.target) });
  if (receiver.source) receiver.set_source({ address: addressOf(receiver.source) });
}
