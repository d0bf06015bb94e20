/**
 * The services behind the functions and the composition root (`appRoot`) that builds them from
 * the app settings. Tests build their own `ApiServices` from fakes with `createApiServices`.
 */
import { loadSettings, type IotHubAccess, type Settings } from '../settings';
import type { EntityStore } from '../storage/entity-store';
import type { HistoryParts } from '../telemetry/history-handlers';
import { TelemetryProcessor } from '../telemetry/processor';
import type { RetentionServices } from '../telemetry/retention';
import { StallMonitor } from '../telemetry/stall';
import { TableEntityStore } from '../storage/table-entity-store';
import { DeviceService } from '../devices/device-service';
import type { RegistryClient, ServiceClient } from '../iothub/clients';
import { registryFromSettings, serviceClientFromSettings } from '../iothub/clients';
import { SharedServiceClient } from '../messages/shared-service-client';
import { FeedbackDrainer } from '../messages/feedback';
import { systemClock, type Clock } from '../clock';
import { MessageService } from '../messages/message-service';
import { MessageStatusStore } from '../messages/status-store';
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
  /** The app's tables (the message status table among them). */
  statusStore: EntityStore;
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
  const store = new MessageStatusStore(parts.statusStore, clock);
  return {
    devices: new DeviceService(parts.registry, parts.hubHostName),
    messages: new MessageService(shared, store, clock),
    feedback: new FeedbackDrainer(shared, store, clock),
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

function partsFromSettings(
  settings: Settings,
  tables: EntityStore = TableEntityStore.fromSettings(settings.storage),
): ServiceParts {
  const access: IotHubAccess = settings.iotHub;
  return {
    registry: registryFromSettings(access),
    serviceClient: () => serviceClientFromSettings(access),
    statusStore: tables,
    hubHostName: access.hostName,
    twins: twinClientFromSettings(access),
    methods: methodClientFromSettings(access),
    feedbackDrainMs: settings.feedback.drainSeconds * 1000,
  };
}

/**
 * The one composition root: everything the function files use, built once per instance from the
 * app settings, each part on first use (so loading a function file needs no settings, and a
 * settings error surfaces in the first invocation's log). Parts that share a resource share one
 * instance: the telemetry tables' store serves the trigger, the read routes and the retention timer.
 */
export class AppRoot {
  #settings: Settings | undefined;
  #api: ApiServices | undefined;
  #processor: TelemetryProcessor | undefined;
  #tables: EntityStore | undefined;
  /** Shared by the telemetry trigger (which records each batch) and the health route. */
  readonly stall: StallMonitor;

  constructor(
    private readonly load: () => Settings = loadSettings,
    readonly clock: Clock = systemClock,
  ) {
    this.stall = new StallMonitor(clock);
  }

  settings(): Settings {
    this.#settings ??= this.load();
    return this.#settings;
  }

  /** Devices, messages, feedback, twins, methods and the health probes. */
  api(): ApiServices {
    this.#api ??= createApiServices({
      ...partsFromSettings(this.settings(), this.tables()),
      clock: this.clock,
    });
    return this.#api;
  }

  /** The telemetry trigger's processor (its table clients and device-state cache are reused). */
  telemetry(): TelemetryProcessor {
    this.#processor ??= TelemetryProcessor.fromSettings(this.settings(), this.clock, this.tables());
    return this.#processor;
  }

  /** The app's tables (telemetry, alerts, dead letters, device state, message status). */
  tables(): EntityStore {
    this.#tables ??= TableEntityStore.fromSettings(this.settings().storage);
    return this.#tables;
  }

  history(): HistoryParts {
    return {
      store: () => this.tables(),
      alertThreshold: () => this.settings().telemetry.alertThreshold,
    };
  }

  retention(): RetentionServices {
    return {
      store: this.tables(),
      retentionDays: this.settings().telemetry.retentionDays,
      clock: this.clock,
    };
  }
}

/** The instance-wide root every file in functions/ takes its services from. */
export const appRoot = new AppRoot();
