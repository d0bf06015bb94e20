/**
 * The reply side of a request/response node (`$cbs`, `$management`): the links a client attached
 * to receive replies, and the replies waiting for credit on them. A reply goes to the link the
 * request's `reply_to` names (its target address, else its link name), else to one on the
 * request's session, else to any open one.
 */
import type { Message, Sender } from 'rhea';

interface ReplyLink {
  sender: Sender;
  /** Replies waiting for credit. */
  pending: Message[];
}

export interface ReplyLinksOptions {
  /**
   * Hold a reply while no reply link is open and send it once one attaches (the service
   * surface's `$cbs`); otherwise `send` reports that the reply had nowhere to go.
   */
  holdUntilAttached: boolean;
}

function targetAddress(sender: Sender): unknown {
  const target: unknown = sender.target;
  return typeof target === 'object' && target !== null
    ? (target as { address?: unknown }).address
    : undefined;
}

export class ReplyLinks {
  private links: ReplyLink[] = [];
  /** Replies that arrived before any reply link (only with `holdUntilAttached`). */
  private readonly held: { reply: Message; session: unknown }[] = [];

  constructor(private readonly options: ReplyLinksOptions) {}

  add(sender: Sender): void {
    this.links.push({ sender, pending: [] });
    const held = this.held.splice(0);
    for (const { reply, session } of held) this.send(reply, session);
    this.flush(sender);
  }

  has(sender: Sender): boolean {
    return this.links.some((l) => l.sender === sender);
  }

  remove(sender: Sender): void {
    this.links = this.links.filter((l) => l.sender !== sender);
  }

  clear(): void {
    this.links = [];
    this.held.length = 0;
  }

  /**
   * Sends `reply` (addressed by its `to`, the request's `reply_to`) as credit allows. False when
   * no reply link is open and the reply was dropped.
   */
  send(reply: Message, session: unknown): boolean {
    const link = this.pick(reply.to, session);
    if (!link) {
      if (this.options.holdUntilAttached) this.held.push({ reply, session });
      return this.options.holdUntilAttached;
    }
    link.pending.push(reply);
    this.flushLink(link);
    return true;
  }

  /** Sends what waits on `sender` (call when it gets credit). */
  flush(sender: Sender): void {
    const link = this.links.find((l) => l.sender === sender);
    if (link) this.flushLink(link);
  }

  private flushLink(link: ReplyLink): void {
    while (link.pending.length > 0 && link.sender.sendable()) {
      const next = link.pending.shift();
      if (next) link.sender.send(next);
    }
  }

  private pick(replyTo: unknown, session: unknown): ReplyLink | undefined {
    const open = this.links.filter((l) => l.sender.is_open());
    if (typeof replyTo === 'string') {
      const named =
        open.find((l) => targetAddress(l.sender) === replyTo) ??
        open.find((l) => l.sender.name === replyTo);
      if (named) return named;
    }
    return open.find((l) => l.sender.session === session) ?? open[0];
  }
}
