/**
 * The reply side of a request/response node (emulator/amqp/reply-links.ts), on stand-in senders:
 * which link a reply takes, what waits for credit, and what happens with no link at all.
 */
import type { Message, Sender } from 'rhea';
import { ReplyLinks } from '../../amqp/reply-links';

interface FakeSender {
  sender: Sender;
  sent: Message[];
  credit: number;
}

function fakeSender(address: string, name: string, session: object, credit = 10): FakeSender {
  const fake: FakeSender = { sender: undefined as unknown as Sender, sent: [], credit };
  fake.sender = {
    target: { address },
    name,
    session,
    is_open: () => true,
    sendable: () => fake.credit > 0,
    send: (message: Message) => {
      fake.credit -= 1;
      fake.sent.push(message);
    },
  } as unknown as Sender;
  return fake;
}

const reply = (to?: string): Message => ({ ...(to ? { to } : {}), body: 'r' });

describe('ReplyLinks', () => {
  const sessionA = {};
  const sessionB = {};

  test('a reply takes the link its reply_to names: target address, then link name', () => {
    const links = new ReplyLinks({ holdUntilAttached: false });
    const first = fakeSender('cbs-1', 'link-1', sessionA);
    const second = fakeSender('cbs-2', 'link-2', sessionA);
    links.add(first.sender);
    links.add(second.sender);
    expect(links.send(reply('cbs-2'), sessionA)).toBe(true);
    expect(links.send(reply('link-1'), sessionA)).toBe(true);
    expect(second.sent).toHaveLength(1);
    expect(first.sent).toHaveLength(1);
  });

  test('without a matching reply_to, a link on the same session, else any', () => {
    const links = new ReplyLinks({ holdUntilAttached: false });
    const onA = fakeSender('a', 'a', sessionA);
    const onB = fakeSender('b', 'b', sessionB);
    links.add(onA.sender);
    links.add(onB.sender);
    links.send(reply('nowhere'), sessionB);
    expect(onB.sent).toHaveLength(1);
    links.send(reply(), {});
    expect(onA.sent).toHaveLength(1);
  });

  test('a reply waits for credit and goes out on flush', () => {
    const links = new ReplyLinks({ holdUntilAttached: false });
    const link = fakeSender('cbs', 'cbs', sessionA, 0);
    links.add(link.sender);
    links.send(reply('cbs'), sessionA);
    expect(link.sent).toHaveLength(0);
    link.credit = 1;
    links.flush(link.sender);
    expect(link.sent).toHaveLength(1);
  });

  test('with no reply link: dropped (false), or held until one attaches', () => {
    const dropping = new ReplyLinks({ holdUntilAttached: false });
    expect(dropping.send(reply('cbs'), sessionA)).toBe(false);
    const holding = new ReplyLinks({ holdUntilAttached: true });
    expect(holding.send(reply('cbs'), sessionA)).toBe(true);
    const late = fakeSender('cbs', 'cbs', sessionA);
    holding.add(late.sender);
    expect(late.sent).toEqual([reply('cbs')]);
  });

  test('a removed link takes no more replies', () => {
    const links = new ReplyLinks({ holdUntilAttached: false });
    const link = fakeSender('cbs', 'cbs', sessionA);
    links.add(link.sender);
    links.remove(link.sender);
    expect(links.has(link.sender)).toBe(false);
    expect(links.send(reply('cbs'), sessionA)).toBe(false);
  });
});
