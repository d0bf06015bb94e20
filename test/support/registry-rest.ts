/**
 * Raw calls through the official `Registry`'s own REST client (signing, headers and error
 * translation exactly as the SDK does them), for requests `Registry` has no method for.
 */
import type { Registry } from 'azure-iothub';

export interface RestResponse {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export type SdkError = Error & { response?: { statusCode: number }; responseBody?: string };

interface RestClient {
  executeApiCall(
    method: string,
    path: string,
    headers: Record<string, string> | null,
    body: unknown,
    done: (
      err: SdkError | null,
      result?: unknown,
      response?: { statusCode: number; headers?: RestResponse['headers'] },
    ) => void,
  ): void;
}

export function restCall(
  registry: Registry,
  method: string,
  path: string,
  headers: Record<string, string> | null,
  body: unknown = null,
): Promise<RestResponse> {
  const client = (registry as unknown as { _restApiClient: RestClient })._restApiClient;
  return new Promise((resolve, reject) => {
    client.executeApiCall(method, path, headers, body, (err, result, response) => {
      if (err) reject(err);
      else
        resolve({
          status: response?.statusCode ?? 0,
          body: result,
          headers: response?.headers ?? {},
        });
    });
  });
}

/** Resolves with the error a promise rejects with (fails if it resolves). */
export async function failure(promise: Promise<unknown>): Promise<SdkError> {
  try {
    await promise;
  } catch (error) {
    return error as SdkError;
  }
  throw new Error('expected the call to fail');
}
