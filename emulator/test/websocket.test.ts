/**
 * The pure parts of MQTT/AMQP over WebSockets: which subprotocol a client's offer selects, and the
 * `HostName` the hub publishes (bare on 443, where the SDKs' WebSocket transports add `:443`).
 * The transports themselves are covered end to end by test/conformance/websockets.test.ts.
 */
import { gatewayHostName } from '../config';
import { chooseSubprotocol } from '../websocket';

describe('chooseSubprotocol', () => {
  it('maps mqtt and AMQPWSB10 (any case) to their protocol, keeping the client’s spelling', () => {
    expect(chooseSubprotocol('mqtt')).toEqual({ name: 'mqtt', protocol: 'mqtt' });
    expect(chooseSubprotocol('AMQPWSB10')).toEqual({ name: 'AMQPWSB10', protocol: 'amqp' });
    expect(chooseSubprotocol('amqpwsb10')).toEqual({ name: 'amqpwsb10', protocol: 'amqp' });
  });

  it('takes the first served one of several offers and refuses an offer with none', () => {
    expect(chooseSubprotocol('stomp, mqtt , AMQPWSB10')).toEqual({
      name: 'mqtt',
      protocol: 'mqtt',
    });
    expect(chooseSubprotocol('stomp, mqttv5')).toBeUndefined();
    expect(chooseSubprotocol(undefined)).toBeUndefined();
  });
});

describe('gatewayHostName', () => {
  it('leaves the port out on 443 so `wss://<HostName>:443/…` is dialable', () => {
    expect(gatewayHostName('localhost', 443)).toBe('localhost');
  });

  it('keeps host:port on any other port', () => {
    expect(gatewayHostName('localhost', 4443)).toBe('localhost:4443');
    expect(gatewayHostName('10.0.0.5', 44300)).toBe('10.0.0.5:44300');
  });
});
