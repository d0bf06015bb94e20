/**
 * SASL for the plain-AMQP endpoint: ANONYMOUS (@azure/event-hubs with
 * `UseDevelopmentEmulator=true`) and MSSBCBS (the .NET client the Functions host uses). Both just
 * succeed: authorization happens per link through CBS put-token, as on Azure.
 */

interface ServerMechanism {
  outcome: boolean | undefined;
  username: string | undefined;
  start(response?: Buffer, hostname?: string): void;
}

function succeeding(name: string): () => ServerMechanism {
  return () => ({
    outcome: undefined,
    username: undefined,
    start(response?: Buffer) {
      this.outcome = true;
      this.username = response && response.length > 0 ? response.toString('utf8') : name;
    },
  });
}

/** Adds the endpoint's mechanisms to a rhea container's `sasl_server_mechanisms`. */
export function enableEventsSasl(mechanisms: Record<string, unknown>): void {
  mechanisms.ANONYMOUS = succeeding('anonymous');
  mechanisms.MSSBCBS = succeeding('mssbcbs');
}
