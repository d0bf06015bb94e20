import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HubError } from '../../core/contracts';
import { sendFailure } from '../../http/reply';

/** Serves one failure and returns what was logged at each level and the status sent. */
async function logged(error: unknown): Promise<{ status: number; lines: string[] }> {
  const lines: string[] = [];
  const log = {
    info: (m: string) => lines.push(`info ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
  };
  const server = http.createServer((_req, res) => sendFailure(res, log, 'GET /devices/x', error));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/`);
    await response.arrayBuffer();
    return { status: response.status, lines };
  } finally {
    server.close();
  }
}

describe('REST failure replies', () => {
  it('logs a look-up that finds nothing as information, not as a warning', async () => {
    const { status, lines } = await logged(new HubError('DeviceNotFound', 'no device x'));
    expect(status).toBe(404);
    expect(lines).toEqual([expect.stringMatching(/^info GET \/devices\/x rejected: 404/)]);
  });

  it('logs other refusals as warnings and local faults as errors', async () => {
    const refused = await logged(new HubError('ArgumentInvalid', 'bad id'));
    expect(refused.status).toBe(400);
    expect(refused.lines).toEqual([expect.stringMatching(/^warn .* rejected: 400/)]);
    const fault = await logged(new Error('boom'));
    expect(fault.status).toBe(500);
    expect(fault.lines).toEqual([
      expect.stringMatching(/^error GET \/devices\/x failed: Error: boom/),
    ]);
  });
});
