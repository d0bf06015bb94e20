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
import { SharedServiceClient } from '../messages/shared-service-client';
import { FeedbackDrainer } from '../messages/feedback';
import { MessageService, systemClock, type Clock } from '../messages/message-service';
import { MessageStatusStore, adaptTableClient, type StatusTable } from '../messages/status-store';
import type { HealthProbes } from './health';
import { TwinService } from '../twin/twin-service';
import { twinClientFromSettings, type TwinClient } from '../twin/twin-client';
import { MethodService } from '../methods/method-service';
import { methodClientFromSettings, type MethodClient } from '../methods/method-client';

export interface ApiServices {
  devices: DeviceService;
  messages: MessageService;
  feedback: FeedbackDrainer;
  twins: TwinService;
  methods: MethodService;
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
  /** Twin and method clients; tests of other routes leave them out. */
  twins?: TwinClient;
  methods?: MethodClient;
  feedbackDrainMs?: number;
  clock?: Clock;
}

/** A device id that never exists: reading it is the cheapest authenticated registry call. */
const probeDeviceId = '$health-probe';

function notConfigured(): Promise<never> {
  return Promise.reject(new Error('this ApiServices was built without that IoT Hub client'));
}

export function createApiServices(parts: ServiceParts): ApiServices {
  const clock = parts.clock ?? systemClock;
  const shared = new SharedServiceClient(parts.serviceClient);
  const store = new MessageStatusStore(parts.statusTable, () => clock.now());
  return {
    devices: new DeviceService(parts.registry, parts.hubHostName),
    messages: new MessageService(shared, store, clock),
    feedback: new FeedbackDrainer(shared, store, { now: () => clock.now().getTime() }),
    twins: new TwinService(parts.twins ?? { get: notConfigured, update: notConfigured }),
    methods: new MethodService(parts.methods ?? { invoke: notConfigured }),
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
    twins: twinClientFromSettings(access),
    methods: methodClientFromSettings(access),
    feedbackDrainMs: settings.feedback.drainSeconds * 1000,
  };
}

let instance: ApiServices | undefined;

/** The instance-wide services, created from the app settings on first call. */
export function apiServices(): ApiServices {
  instance ??= createApiServicesFromSettings(loadSettings());
  return instance;
}
