/**
 * Devices over MQTT 3.1.1 (TLS terminated by server.ts): an aedes broker whose hooks enforce
 * IoT Hub's device rules. First version: the export server.ts wires; behaviour follows.
 */
import type { EmulatorContext, ProtocolAdapter } from '../context';

export async function createMqttAdapter(ctx: EmulatorContext): Promise<ProtocolAdapter> {
  await Promise.resolve();
  ctx.log.warn('mqtt: adapter not implemented yet; refusing device connections');
  return {
    handle(socket) {
      socket.destroy();
    },
    close: async () => {},
  };
}
