/**
 * MQTT and AMQP over WebSockets, as IoT Hub serves them: an HTTP upgrade at `/$iothub/websocket`
 * on the TLS gateway, with subprotocol `mqtt` (azure-iot-device-mqtt `MqttWs`) or `AMQPWSB10`
 * (the AMQP WebSocket binding: `AmqpWs` of the device SDK and of azure-iothub). The registry's
 * HTTP server hands over every upgrade request; this module completes the WebSocket handshake
 * (the `ws` package) and passes the resulting byte stream to the adapter that serves the protocol
 * over TLS, which authenticates inside the protocol as usual (MQTT CONNECT password, AMQP CBS), or
 * by the client certificate of the TLS connection under the WebSocket (X.509 devices).
 *
 * Anything else is refused before the handshake: another path → 404, no known subprotocol → 400,
 * and the connection is closed.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { Logger } from './context';
import { peerAddress } from './peer-address';

export const websocketPath = '/$iothub/websocket';

/** The byte protocol a WebSocket connection carries. */
export type WebSocketProtocol = 'mqtt' | 'amqp';

/** IoT Hub's subprotocol names (compared ignoring case, as HTTP tokens are). */
const subprotocols: ReadonlyMap<string, WebSocketProtocol> = new Map([
  ['mqtt', 'mqtt'],
  ['amqpwsb10', 'amqp'],
]);

export interface WebSocketGatewayOptions {
  /** Largest WebSocket message accepted (the per-frame guards apply to the stream as well). */
  maxPayloadBytes: number;
  /** Hands the stream (a byte stream, like a decrypted TLS socket) to the protocol's adapter. */
  accept(protocol: WebSocketProtocol, stream: Duplex, remote: string): void;
  log: Logger;
}

export interface WebSocketGateway {
  /** The `upgrade` listener of the HTTP server that sees the gateway's HTTP connections. */
  readonly upgrade: (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly close: () => void;
}

/** The first offered subprotocol IoT Hub serves, as the client spelled it. */
export function chooseSubprotocol(
  header: string | undefined,
): { name: string; protocol: WebSocketProtocol } | undefined {
  for (const offered of (header ?? '').split(',')) {
    const name = offered.trim();
    const protocol = subprotocols.get(name.toLowerCase());
    if (protocol) return { name, protocol };
  }
  return undefined;
}

function pathOf(request: http.IncomingMessage): string {
  try {
    return new URL(request.url ?? '/', 'https://local-iothub').pathname;
  } catch {
    return '';
  }
}

/** Answers a refused upgrade with a plain HTTP error and closes the connection. */
function refuse(socket: Duplex, status: 400 | 404, message: string): void {
  const body = JSON.stringify({ Message: message });
  const reason = status === 404 ? 'Not Found' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // Do not wait for the peer to finish its side: the connection is over.
  socket.once('finish', () => socket.destroy());
}

export function createWebSocketGateway(options: WebSocketGatewayOptions): WebSocketGateway {
  const { log } = options;
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes,
    // Neither SDK asks for compression; refusing it keeps a compressed bomb out.
    perMessageDeflate: false,
    handleProtocols: (offered) => chooseSubprotocol([...offered].join(','))?.name ?? false,
  });

  const upgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const remote = peerAddress(socket);
    const path = pathOf(request);
    if (path.toLowerCase() !== websocketPath) {
      log.warn(`refused a WebSocket upgrade from ${remote}: no WebSocket endpoint at this path`);
      refuse(socket, 404, `ErrorCode:NotFound;no WebSocket endpoint at this path`);
      return;
    }
    const chosen = chooseSubprotocol(request.headers['sec-websocket-protocol']);
    if (!chosen) {
      log.warn(`refused a WebSocket upgrade from ${remote}: no mqtt or AMQPWSB10 subprotocol`);
      refuse(socket, 400, 'ErrorCode:ArgumentInvalid;the subprotocol must be mqtt or AMQPWSB10');
      return;
    }
    // ws answers a malformed handshake (method, key, version) with 400 and closes the socket.
    server.handleUpgrade(request, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      // Adapters log the peer from these, as they do for a TLS socket, and read an X.509
      // device's client certificate (sent in the TLS handshake under the WebSocket).
      const tlsSocket = socket as Partial<tls.TLSSocket>;
      Object.assign(stream, {
        remoteAddress: tlsSocket.remoteAddress,
        remotePort: tlsSocket.remotePort,
        getPeerCertificate: tlsSocket.getPeerCertificate?.bind(tlsSocket),
      });
      stream.on('error', () => {});
      log.info(`WebSocket (${chosen.name}) connection from ${remote}`);
      options.accept(chosen.protocol, stream, remote);
    });
  };

  return {
    upgrade,
    close: () => {
      for (const client of server.clients) client.terminate();
      server.close();
    },
  };
}
