/**
 * Calls to the keyed API from the page: every request carries `x-functions-key`, and every
 * failure becomes an ApiProblem holding the problem+json title and detail.
 */
import { problemFrom, type ProblemView } from './format';

export class ApiProblem extends Error {
  constructor(readonly problem: ProblemView) {
    super(`${problem.title}${problem.detail ? `: ${problem.detail}` : ''}`);
    this.name = 'ApiProblem';
  }
}

export interface ApiResult<T> {
  status: number;
  body: T;
  headers: Headers;
}

export interface Device {
  deviceId: string;
  status: 'enabled' | 'disabled';
  etag: string;
  connectionState: 'Connected' | 'Disconnected';
  lastActivityTime?: string;
  cloudToDeviceMessageCount: number;
}

export interface CreatedDevice extends Device {
  connectionString: string;
}

export interface Reading {
  [field: string]: unknown;
  enqueuedTime: string;
  windSpeed?: number;
  messageId?: string;
}

export interface Alert {
  windSpeed: number;
  threshold: number;
  enqueuedTime: string;
}

export interface DeadLetter {
  reason: string;
  detail: string;
  enqueuedTime?: string;
  bodySize: number;
  bodyText?: string;
}

export interface MessageStatus {
  messageId: string;
  status: string;
  description?: string;
  updatedAt?: string;
}

export interface TwinSection {
  version: number;
  lastUpdated?: string;
  properties: Record<string, unknown>;
}

export interface Twin {
  deviceId: string;
  etag: string;
  tags: Record<string, unknown>;
  desired: TwinSection;
  reported: TwinSection;
}

export interface MethodResult {
  status: number;
  payload: unknown;
}

const id = (value: string) => encodeURIComponent(value);

export class ApiClient {
  /** `base` is the API root, e.g. `https://app.example/api/`. */
  constructor(
    private readonly base: URL,
    private readonly key: () => string | undefined,
  ) {}

  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResult<T>> {
    const init: RequestInit = {
      method,
      headers: { ...headers, accept: 'application/json' },
      cache: 'no-store',
    };
    const key = this.key();
    if (key) (init.headers as Record<string, string>)['x-functions-key'] = key;
    if (body !== undefined) {
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(new URL(path, this.base), init);
    } catch {
      throw new ApiProblem({
        status: 0,
        title: 'The API could not be reached',
        detail: 'Check that the app is running.',
      });
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      // Not JSON (a proxy's page): shown as text.
    }
    if (!response.ok)
      throw new ApiProblem(problemFrom(response.status, response.statusText, parsed));
    return { status: response.status, body: parsed as T, headers: response.headers };
  }

  async listDevices(): Promise<Device[]> {
    const devices: Device[] = [];
    let token: string | undefined;
    // A few pages at most: the explorer is for looking, not for fleets of thousands.
    for (let page = 0; page < 5; page += 1) {
      const query = `devices?pageSize=1000${token ? `&continuationToken=${id(token)}` : ''}`;
      const { body } = await this.call<{ items: Device[]; continuationToken?: string }>(
        'GET',
        query,
      );
      devices.push(...body.items);
      token = body.continuationToken;
      if (!token) break;
    }
    return devices;
  }

  async createDevice(deviceId: string): Promise<CreatedDevice> {
    return (await this.call<CreatedDevice>('POST', 'devices', deviceId ? { deviceId } : {})).body;
  }

  async setStatus(deviceId: string, status: 'enabled' | 'disabled'): Promise<Device> {
    return (await this.call<Device>('PATCH', `devices/${id(deviceId)}`, { status })).body;
  }

  async deleteDevice(deviceId: string): Promise<void> {
    await this.call('DELETE', `devices/${id(deviceId)}`);
  }

  async telemetry(
    deviceId: string,
    fromIso: string | undefined,
    limit: number,
  ): Promise<{ items: Reading[]; latest?: Reading }> {
    const from = fromIso ? `&from=${id(fromIso)}` : '';
    return (
      await this.call<{ items: Reading[]; latest?: Reading }>(
        'GET',
        `devices/${id(deviceId)}/telemetry?limit=${limit}${from}`,
      )
    ).body;
  }

  async alerts(
    deviceId: string,
    fromIso: string,
    limit: number,
  ): Promise<{ items: Alert[]; threshold: number }> {
    return (
      await this.call<{ items: Alert[]; threshold: number }>(
        'GET',
        `devices/${id(deviceId)}/alerts?from=${id(fromIso)}&limit=${limit}`,
      )
    ).body;
  }

  async deadLetters(deviceId: string, limit: number): Promise<DeadLetter[]> {
    return (
      await this.call<{ items: DeadLetter[] }>(
        'GET',
        `devices/${id(deviceId)}/deadletters?limit=${limit}`,
      )
    ).body.items;
  }

  async sendMessage(deviceId: string, message: Record<string, unknown>): Promise<MessageStatus> {
    return (await this.call<MessageStatus>('POST', `devices/${id(deviceId)}/messages`, message))
      .body;
  }

  async messageStatus(deviceId: string, messageId: string): Promise<MessageStatus> {
    return (
      await this.call<MessageStatus>('GET', `devices/${id(deviceId)}/messages/${id(messageId)}`)
    ).body;
  }

  async twin(deviceId: string): Promise<{ twin: Twin; etag: string }> {
    const { body, headers } = await this.call<Twin>('GET', `devices/${id(deviceId)}/twin`);
    return { twin: body, etag: headers.get('etag') ?? `"${body.etag}"` };
  }

  async updateDesired(
    deviceId: string,
    desired: Record<string, unknown>,
    etag: string,
  ): Promise<{ twin: Twin; etag: string }> {
    const { body, headers } = await this.call<Twin>(
      'PATCH',
      `devices/${id(deviceId)}/twin`,
      { desired },
      { 'if-match': etag },
    );
    return { twin: body, etag: headers.get('etag') ?? `"${body.etag}"` };
  }

  async invokeMethod(
    deviceId: string,
    name: string,
    payload: unknown,
    timeoutSeconds: number,
  ): Promise<MethodResult> {
    return (
      await this.call<MethodResult>('POST', `devices/${id(deviceId)}/methods/${id(name)}`, {
        payload,
        responseTimeoutInSeconds: timeoutSeconds,
      })
    ).body;
  }
}
