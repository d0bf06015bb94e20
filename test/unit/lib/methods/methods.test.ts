/**
 * The direct-method route against a fake method client that fails the way `azure-iothub`'s
 * REST client does (its errors carry the HTTP response and IoT Hub's error body).
 */
import { errors } from 'azure-iot-common';
import { createMethodHandlers } from '../../../../lib/methods/method-handlers';
import { MethodService } from '../../../../lib/methods/method-service';
import type { MethodCall, MethodClient } from '../../../../lib/methods/method-client';
import type { MethodResult } from '../../../../lib/methods/schemas';
import { apiRequest, contextLoggingTo, expectProblem, json } from '../../../support/http';

/** An SDK REST failure as `RestApiClient.translateError` builds it. */
function restError(error: Error, statusCode: number, body: string): Error {
  return Object.assign(error, { response: { statusCode }, responseBody: body });
}

class FakeMethods implements MethodClient {
  calls: { deviceId: string; call: MethodCall }[] = [];
  answer: Promise<MethodResult> = Promise.resolve({ status: 200, payload: { ok: true } });

  invoke(deviceId: string, call: MethodCall): Promise<MethodResult> {
    this.calls.push({ deviceId, call });
    return this.answer;
  }
}

const url = 'https://app.example/api/devices/sim-1/methods/SetTelemetryInterval';

function setup() {
  const hub = new FakeMethods();
  const methods = new MethodService(hub);
  const handlers = createMethodHandlers(() => ({ methods }));
  return { hub, handlers, context: () => contextLoggingTo([]) };
}

function call(body: unknown, methodName = 'SetTelemetryInterval', deviceId = 'sim-1') {
  return apiRequest('POST', url, {
    body: JSON.stringify(body),
    params: { deviceId, methodName },
  });
}

describe('POST /devices/{deviceId}/methods/{methodName}', () => {
  it("answers 200 with the device's status and payload, passing IoT Hub's defaults", async () => {
    const { handlers, hub, context } = setup();
    hub.answer = Promise.resolve({ status: 400, payload: { error: 'bad value' } });
    const response = await handlers.invoke(call({ payload: 0 }), context());
    expect(response.status).toBe(200);
    expect(json(response)).toEqual({ status: 400, payload: { error: 'bad value' } });
    expect(hub.calls).toEqual([
      {
        deviceId: 'sim-1',
        call: {
          methodName: 'SetTelemetryInterval',
          payload: 0,
          responseTimeoutInSeconds: 30,
          connectTimeoutInSeconds: 0,
        },
      },
    ]);
  });

  it('answers 404 device-offline when IoT Hub says the device is not online', async () => {
    const { handlers, hub, context } = setup();
    // IoT Hub's own body for 404103; the SDK has no class for it, only a plain Error.
    hub.answer = Promise.reject(
      restError(
        new Error('Not found'),
        404,
        '{"Message":"{\\"errorCode\\":404103,\\"message\\":\\"Timed out waiting for device to connect.\\"}","ExceptionMessage":""}',
      ),
    );
    expectProblem(await handlers.invoke(call({}), context()), 404, 'device-offline');
  });

  it('answers 404 device-not-found for an unregistered device', async () => {
    const { handlers, hub, context } = setup();
    hub.answer = Promise.reject(
      restError(
        new errors.DeviceNotFoundError('x'),
        404,
        '{"Message":"ErrorCode:DeviceNotFound;x"}',
      ),
    );
    expectProblem(await handlers.invoke(call({}), context()), 404, 'device-not-found');
  });

  it('answers 504 method-timeout when the device does not answer in time', async () => {
    const { handlers, hub, context } = setup();
    hub.answer = Promise.reject(
      restError(
        new errors.GatewayTimeoutError('x'),
        504,
        '{"Message":"ErrorCode:GatewayTimeout;x"}',
      ),
    );
    expectProblem(await handlers.invoke(call({}), context()), 504, 'method-timeout');
  });

  it.each([
    ['a response timeout below 5 s', { responseTimeoutInSeconds: 4 }],
    ['a response timeout above 300 s', { responseTimeoutInSeconds: 301 }],
    ['a negative connect timeout', { connectTimeoutInSeconds: -1 }],
    ['a fractional timeout', { responseTimeoutInSeconds: 5.5 }],
    [
      'timeouts over the 230 s HTTP limit together',
      { responseTimeoutInSeconds: 200, connectTimeoutInSeconds: 31 },
    ],
    ['an unknown field', { methodName: 'x' }],
  ])('answers 400 for %s without calling the device', async (_name, body) => {
    const { handlers, hub, context } = setup();
    expectProblem(await handlers.invoke(call(body), context()), 400, 'validation-failed');
    expect(hub.calls).toHaveLength(0);
  });

  it.each(['a/b', 'a#', 'a+b', 'a?b', 'x'.repeat(129), ''])(
    'answers 400 for the method name %j',
    async (name) => {
      const { handlers, hub, context } = setup();
      expectProblem(await handlers.invoke(call({}, name), context()), 400, 'validation-failed');
      expect(hub.calls).toHaveLength(0);
    },
  );

  it('answers 413 naming the 128 KB limit for a larger payload, and accepts one just under it', async () => {
    const { handlers, hub, context } = setup();
    const over = await handlers.invoke(call({ payload: 'x'.repeat(128 * 1024) }), context());
    const problem = expectProblem(over, 413, 'payload-too-large');
    expect(String(problem.detail)).toContain('131072 bytes');
    expect(hub.calls).toHaveLength(0);
    const under = await handlers.invoke(call({ payload: 'x'.repeat(128 * 1024 - 2) }), context());
    expect(under.status).toBe(200);
  });
});
