/**
 * Proving that a link was not refused, without sleeping: the hub refuses a link by answering its
 * attach with an attach and a detach at once, and answers the frames of one connection in order.
 * So once the hub has answered a later attach on the same connection, any detach of an earlier
 * link has already arrived.
 */
import type { Connection } from 'rhea';

/** Resolves once the hub answered an attach made now (to `$management`, which it always accepts). */
export function laterAttachAnswered(connection: Connection): Promise<void> {
  return new Promise((resolve) => {
    const probe = connection.open_sender({ target: { address: '$management' } });
    probe.once('sender_open', () => {
      probe.close();
      resolve();
    });
  });
}
