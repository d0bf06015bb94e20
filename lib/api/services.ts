/**
 * The services behind the HTTP functions, built once per instance from the app settings on
 * first use (so merely loading a function file needs no settings). Tests build their own
 * `ApiServices` from fakes with `createApiServices`.
 */
import { loadSettings, type IotHubAccess, type Settings } from '../settings';
import { TableNames, getTableClient } from '../storage/tables';
import { DeviceService } from '../devices/device-service';
import type { RegistryClient, ServiceClient } from '../iothub/clients';
import { registryFromSettings, serviceClientFromSettings } from '../iothub/clients';
import { SharedServiceClient } from '../iothub/shared-service-client';
import { FeedbackDrainer } from '../messages/feedback';
import { MessageService, systemClock, type Clock } from '../messages/message-service';
import { MessageStatusStore, adaptTableClient, type StatusTable } from '../messages/status-store';
import type { HealthProbes } from './health';

export interface ApiServices {
  devices: DeviceService;
  messages: MessageService;
  feedback: FeedbackDrainer;
  health: HealthProbes;
  /** The run length of one feedback drain. */
  feedbackDrainMs: number;
  /** Closes the AMQP connection (host shutdown, tests). */
  close(): Promise<void>;
}

export interface ServiceParts {
  registry: RegistryClient;
  /** Creates an unopened service client; called again after a connection failure. */
  serviceClient: () => ServiceClient;
  statusTable: () => Promise<StatusTable>;
  hubHostName: string;
  feedbackDrainMs?: number;
  clock?: Clock;
}

/** A device id that never exists: reading it is the cheapest authenticated registry call. */
const probeDeviceId = '$health-probe';

export function createApiServices(parts: ServiceParts): ApiServices {
  const clock = parts.clock ?? systemClock;
  const shared = new SharedServiceClient(parts.serviceClient);
  const store = new MessageStatusStore(parts.statusTable, () => clock.now());
  return {
    devices: new DeviceService(parts.registry, parts.hubHostName),
    messages: new MessageService(shared, store, clock),
    feedback: new FeedbackDrainer(shared, store, { now: () => clock.now().getTime() }),
    feedbackDrainMs: parts.feedbackDrainMs ?? 5_000,
    close: () => shared.close(),
    health: {
      iotHubRegistry: async () => {
        try {
          await parts.registry.get(probeDeviceId);
        } catch (error) {
          if ((error as Error | null)?.name !== 'DeviceNotFoundError') throw error;
        }
      },
      iotHubService: async () => {
        await shared.get();
      },
      storage: () => store.probe(),
    },
  };
}

/** The real clients for `settings` (tests use it to point the API at a local hub). */
export function createApiServicesFromSettings(settings: Settings): ApiServices {
  return createApiServices(partsFromSettings(settings));
}

function partsFromSettings(settings: Settings): ServiceParts {
  const access: IotHubAccess = settings.iotHub;
  return {
    registry: registryFromSettings(access),
    serviceClient: () => serviceClientFromSettings(access),
    statusTable: async () =>
      adaptTableClient(await getTableClient(settings.storage, TableNames.messageStatus)),
    hubHostName: access.hostName,
    feedbackDrainMs: settings.feedback.drainSeconds * 1000,
  };
}

let instance: ApiServices | undefined;

/** The instance-wide services, created from the app settings on first call. */
export function apiServices(): ApiServices {
  instance ??= createApiServicesFromSettings(loadSettings());
  return instance;
}
