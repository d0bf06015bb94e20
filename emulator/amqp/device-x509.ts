/**
 * X.509 devices over AMQP (azure-iot-device-amqp `Amqp` and `AmqpWs` with `x509=true`). The SDK
 * sends its certificate in the TLS handshake (under the WebSocket for `AmqpWs`), offers no SASL
 * mechanism of its own and skips CBS altogether: it attaches its device links straight away. So a
 * device link with no CBS grant for its device is admitted when the connection's client
 * certificate authenticates that device (emulator/auth/x509.ts: registered thumbprint, or a chain
 * to a trusted device CA naming the device id; within its validity period), as IoT Hub does.
 * The check runs at every attach, so a re-attach after a thumbprint rotation is refused.
 */
import type { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { EmulatorContext } from '../context';
import { HubError } from '../core/contracts';
import { authenticateCertificate, presentedChain } from '../auth/x509';

/** The client certificate of one AMQP connection, judged per device as its links attach. */
export class DeviceCertificates {
  private readonly chain: readonly X509Certificate[] | undefined;
  /** `iothub-connection-auth-method` of each device this connection's certificate admitted. */
  private readonly admitted = new Map<string, string>();

  constructor(
    private readonly ctx: EmulatorContext,
    socket: Duplex,
  ) {
    // Read once: the handshake is over before the AMQP header arrives.
    this.chain = presentedChain(socket);
  }

  /**
   * Why a link of `deviceId` that holds no CBS grant is refused, or undefined when the
   * certificate authenticates the device. A SAS device keeps the token refusal it always had.
   */
  refusal(deviceId: string): string | undefined {
    const device = this.ctx.core.registry.get(deviceId);
    // Unknown and SAS devices get the same answer, as for a missing token.
    if (!device?.authentication) return `no valid token for device ${JSON.stringify(deviceId)}`;
    try {
      const authMethod = authenticateCertificate({
        device,
        chain: this.chain,
        trustedCas: this.ctx.trustedDeviceCas ?? [],
        nowMs: this.ctx.core.clock.now(),
      });
      if (device.status === 'disabled') return 'the device is disabled';
      this.admitted.set(deviceId, authMethod);
      return undefined;
    } catch (error) {
      this.admitted.delete(deviceId);
      if (error instanceof HubError) return error.message;
      throw error;
    }
  }

  /** The auth method of a device its certificate admitted on this connection, if any. */
  authMethodOf(deviceId: string): string | undefined {
    return this.admitted.get(deviceId);
  }
}
