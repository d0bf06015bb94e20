/**
 * Request and response shapes of the direct-method route, with IoT Hub's ranges
 * (`responseTimeoutInSeconds` 5–300, default 30; `connectTimeoutInSeconds` 0–300, default 0;
 * payload at most 128 KB), registered in `apiSchemas` for the OpenAPI document.
 */
import { z } from 'zod';
import { apiSchemas, JsonValue } from '../http/schemas';
import type { IdRule } from '../iothub/ids';

export const methodLimits = {
  minResponseTimeoutSeconds: 5,
  maxResponseTimeoutSeconds: 300,
  defaultResponseTimeoutSeconds: 30,
  maxConnectTimeoutSeconds: 300,
  defaultConnectTimeoutSeconds: 0,
  payloadBytes: 128 * 1024,
  /**
   * Azure's front end closes an HTTP request to a function app after 230 s; a call allowed to run
   * longer could never be answered, so the two timeouts together must stay below it.
   */
  maxTotalSeconds: 230,
} as const;

/**
 * Method names travel in an MQTT topic (`$iothub/methods/POST/{name}/`), where `/`, `+`, `#`
 * and `?` would change its meaning; names are kept to a safe, common set.
 */
export const methodNameSyntax: IdRule = {
  pattern: /^[A-Za-z0-9_\-.:~!$&'()*,;=@]{1,128}$/,
  rule: "1 to 128 characters: letters, digits and _ - . : ~ ! $ & ' ( ) * , ; = @",
};

export const InvokeMethodRequest = z
  .strictObject({
    payload: JsonValue.optional().describe(
      'Any JSON value the device receives (default null); at most 128 KB.',
    ),
    responseTimeoutInSeconds: z
      .int()
      .min(methodLimits.minResponseTimeoutSeconds)
      .max(methodLimits.maxResponseTimeoutSeconds)
      .optional()
      .describe('How long IoT Hub waits for the answer (5 to 300 s, default 30).'),
    connectTimeoutInSeconds: z
      .int()
      .min(0)
      .max(methodLimits.maxConnectTimeoutSeconds)
      .optional()
      .describe(
        'How long IoT Hub waits for a disconnected device to connect (0 to 300 s, default 0).',
      ),
  })
  .refine(
    (body) =>
      (body.responseTimeoutInSeconds ?? methodLimits.defaultResponseTimeoutSeconds) +
        (body.connectTimeoutInSeconds ?? methodLimits.defaultConnectTimeoutSeconds) <=
      methodLimits.maxTotalSeconds,
    {
      message: `responseTimeoutInSeconds plus connectTimeoutInSeconds must be at most ${methodLimits.maxTotalSeconds} (Azure ends HTTP requests to function apps after 230 s)`,
    },
  );
apiSchemas.add(InvokeMethodRequest, { id: 'InvokeMethodRequest' });

export const MethodResult = z.object({
  status: z.int().describe("The status the device answered with (the device's own code)."),
  payload: JsonValue.describe("The device's answer (null when it sent none)."),
});
apiSchemas.add(MethodResult, { id: 'MethodResult' });

export type InvokeMethodRequest = z.infer<typeof InvokeMethodRequest>;
export type MethodResult = z.infer<typeof MethodResult>;
