/**
 * What `npm start` prints once the stack is up: the API, the key, each connection with where it
 * came from, and how to try it. A connection string the user gave is shown without its key; the
 * well-known local ones (the local hub's, Azurite's) are shown whole so they can be copied.
 */
import type { SettingSource } from './settings';
import { redactConnection } from './settings';

export interface StackSummary {
  apiUrl: string;
  functionKey: string;
  serviceConnectionString: string;
  eventsConnectionString: string;
  /** The app's storage (Azurite's well-known account locally), for Storage Explorer and tools. */
  storageConnectionString: string;
  caBundle: string;
  /** Where each app setting came from (names as in local.settings.json). */
  sources?: Record<string, SettingSource>;
}

const sourceText: Record<SettingSource, string> = {
  environment: 'from the environment',
  'local.settings.json': 'from local.settings.json',
  stack: 'started by the stack',
  example: 'from local.settings.json.example',
};

function connectionLine(label: string, value: string, source: SettingSource | undefined): string {
  return `  ${label.padEnd(26)}${redactConnection(value)}   (${sourceText[source ?? 'stack']})`;
}

export function describeStack(stack: StackSummary): string[] {
  const hostName = /HostName=([^;]+)/.exec(stack.serviceConnectionString)?.[1] ?? 'localhost:4443';
  const api = `${stack.apiUrl}/api`;
  const key = stack.functionKey;
  const sources = stack.sources ?? {};
  return [
    '',
    'The local stack is running.',
    `  API:                      ${api}   (OpenAPI: ${api}/openapi.json)`,
    `  Function key:             ${key}`,
    `  Device explorer:          ${api}/explorer/#key=${encodeURIComponent(key)}`,
    connectionLine(
      'Service connection:',
      stack.serviceConnectionString,
      sources.IOTHUB_CONNECTION_STRING,
    ),
    connectionLine(
      'Events (Event Hub) conn.:',
      stack.eventsConnectionString,
      sources.IOTHUB_EVENTS_CONNECTION,
    ),
    connectionLine(
      'Storage (Azurite):',
      stack.storageConnectionString,
      sources.AzureWebJobsStorage,
    ),
    `  Device connection string: HostName=${hostName};DeviceId=<deviceId>;SharedAccessKey=<primaryKey from POST /devices>`,
    '',
    'Trust the local IoT Hub CA in your own shell before using the SDKs:',
    `  export NODE_EXTRA_CA_CERTS=${stack.caBundle}`,
    '',
    'Try it:',
    `  curl -s -X POST "${api}/devices" -H "x-functions-key: ${key}" -H 'content-type: application/json' -d '{"deviceId":"my-device"}'`,
    `  curl -s "${api}/devices/sim-1/telemetry?limit=5" -H "x-functions-key: ${key}"`,
    `  curl -s -X POST "${api}/devices/my-device/messages" -H "x-functions-key: ${key}" -H 'content-type: application/json' -d '{"payload":{"command":"blink"},"ack":"full"}'`,
    '',
    'Ctrl-C stops everything; state stays in the data folder. Quiet by default: one line per',
    'event that matters and a status line each minute; --verbose (or LOG_LEVEL=debug) shows all.',
  ];
}

/** How to install Core Tools on this platform (`npm run start:func` without `func`). */
export function coreToolsMissing(platform: NodeJS.Platform = process.platform): string {
  const how: Record<string, string> = {
    win32: 'winget install Microsoft.Azure.FunctionsCoreTools',
    darwin: 'brew tap azure/functions && brew install azure-functions-core-tools@4',
    linux:
      'sudo apt-get install azure-functions-core-tools-4 (after adding the Microsoft package repository: https://learn.microsoft.com/azure/azure-functions/functions-run-local)',
  };
  return [
    'Azure Functions Core Tools (func) is not installed. npm install fetches it only where the machine can reach its download site (it is an optional dependency).',
    `Install it with: ${how[platform] ?? 'npm install -g azure-functions-core-tools@4'}`,
    'or run npm start, which runs the same stack with the built-in local host.',
  ].join('\n');
}
