/**
 * The device list: id, status, connection, last activity, latest windSpeed and alerts in the
 * last hour; create (the connection string shown once, with a copy button), enable/disable,
 * delete with confirmation, and filtering by id.
 */
import type { ApiClient, Device } from './api';
import { byId, clearProblem, h, say, showProblem } from './dom';
import { alertCountLabel, filterIds, formatNumber, timeAgo } from './format';

/** Per-device figures fetched beside the list (for at most this many devices). */
const detailLimit = 50;
const alertCap = 1000;

interface Figures {
  windSpeed?: number;
  alerts?: number;
}

export class DevicesView {
  private devices: Device[] = [];
  private figures = new Map<string, Figures>();
  /** Why the list could not be read (cleared when it can again). */
  private readonly problem = byId('devices-problem');
  /** Why the last create, enable/disable or delete failed (cleared by the next one). */
  private readonly actionProblem = byId('action-problem');
  private readonly status = byId('devices-status');
  private pendingDelete: string | undefined;

  constructor(
    private readonly api: ApiClient,
    private readonly open: (deviceId: string) => void,
  ) {
    byId<HTMLInputElement>('device-filter').addEventListener('input', () => this.render());
    byId<HTMLFormElement>('create-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.create();
    });
    byId<HTMLButtonElement>('copy-connection').addEventListener(
      'click',
      () => void this.copyConnection(),
    );
    const dialog = byId<HTMLDialogElement>('delete-dialog');
    dialog.addEventListener('close', () => {
      if (dialog.returnValue === 'delete' && this.pendingDelete)
        void this.remove(this.pendingDelete);
      this.pendingDelete = undefined;
    });
  }

  async refresh(): Promise<void> {
    this.devices = await this.api.listDevices();
    clearProblem(this.problem);
    this.render();
    await this.refreshFigures();
    this.render();
    const rows = byId('device-rows');
    rows.dataset.refreshes = String(Number(rows.dataset.refreshes ?? '0') + 1);
  }

  private async refreshFigures(): Promise<void> {
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const shown = this.devices.slice(0, detailLimit);
    await Promise.all(
      shown.map(async (device) => {
        const [telemetry, alerts] = await Promise.all([
          this.api.telemetry(device.deviceId, undefined, 1),
          this.api.alerts(device.deviceId, hourAgo, alertCap),
        ]);
        this.figures.set(device.deviceId, {
          ...(typeof telemetry.latest?.windSpeed === 'number'
            ? { windSpeed: telemetry.latest.windSpeed }
            : {}),
          alerts: alerts.items.length,
        });
      }),
    );
  }

  render(): void {
    const filter = byId<HTMLInputElement>('device-filter').value;
    const shown = filterIds(this.devices, filter);
    const now = Date.now();
    const rows = byId('device-rows');
    // The list is rebuilt on every refresh: keep keyboard focus on the same control of the same
    // device, or a keyboard user would lose their place every few seconds.
    const focused = focusedControl(rows);
    rows.replaceChildren(...shown.map((device) => this.row(device, now)));
    if (focused) refocus(rows, focused);
    byId('device-count').textContent = `${shown.length} of ${this.devices.length} devices`;
  }

  private row(device: Device, now: number): HTMLTableRowElement {
    const figures = this.figures.get(device.deviceId) ?? {};
    const toggle = device.status === 'enabled' ? 'disabled' : 'enabled';
    const openButton = h(
      'button',
      { type: 'button', class: 'link', 'data-control': 'open' },
      device.deviceId,
    );
    openButton.addEventListener('click', () => this.open(device.deviceId));
    const toggleButton = h(
      'button',
      {
        type: 'button',
        'data-control': 'toggle',
        'aria-label': `${toggle === 'disabled' ? 'Disable' : 'Enable'} ${device.deviceId}`,
      },
      toggle === 'disabled' ? 'Disable' : 'Enable',
    );
    toggleButton.addEventListener('click', () => void this.setStatus(device.deviceId, toggle));
    const deleteButton = h(
      'button',
      {
        type: 'button',
        class: 'danger',
        'data-control': 'delete',
        'aria-label': `Delete ${device.deviceId}`,
      },
      'Delete',
    );
    deleteButton.addEventListener('click', () => this.confirmDelete(device.deviceId));
    const connected = device.connectionState === 'Connected';
    return h(
      'tr',
      { 'data-device': device.deviceId },
      h('th', { scope: 'row' }, openButton),
      h(
        'td',
        { 'data-label': 'Status' },
        h('span', { class: `badge ${device.status}` }, device.status),
      ),
      h(
        'td',
        { 'data-label': 'Connection' },
        h(
          'span',
          { class: `badge ${connected ? 'connected' : 'disconnected'}` },
          device.connectionState,
        ),
      ),
      h('td', { 'data-label': 'Last activity' }, timeAgo(device.lastActivityTime, now)),
      h('td', { 'data-label': 'windSpeed', class: 'num' }, formatNumber(figures.windSpeed)),
      h(
        'td',
        { 'data-label': 'Alerts (1 h)', class: 'num' },
        figures.alerts === undefined ? '–' : alertCountLabel(figures.alerts, alertCap),
      ),
      h('td', { class: 'actions' }, toggleButton, deleteButton),
    );
  }

  private async create(): Promise<void> {
    const input = byId<HTMLInputElement>('new-device-id');
    try {
      const created = await this.api.createDevice(input.value.trim());
      clearProblem(this.actionProblem);
      byId<HTMLInputElement>('connection-string').value = created.connectionString;
      byId('created-device-id').textContent = created.deviceId;
      byId('created').hidden = false;
      input.value = '';
      say(this.status, `Created ${created.deviceId}.`);
      await this.refresh();
    } catch (error) {
      showProblem(this.actionProblem, error);
    }
  }

  private async copyConnection(): Promise<void> {
    const field = byId<HTMLInputElement>('connection-string');
    try {
      await navigator.clipboard.writeText(field.value);
      say(this.status, 'Connection string copied.');
    } catch {
      // Clipboard access needs a secure context: select the text so Ctrl-C copies it.
      field.select();
      say(this.status, 'Press Ctrl-C (or ⌘-C) to copy the selected connection string.');
    }
  }

  private async setStatus(deviceId: string, status: 'enabled' | 'disabled'): Promise<void> {
    try {
      await this.api.setStatus(deviceId, status);
      clearProblem(this.actionProblem);
      say(this.status, `${deviceId} is ${status}.`);
      await this.refresh();
    } catch (error) {
      showProblem(this.actionProblem, error);
    }
  }

  private confirmDelete(deviceId: string): void {
    this.pendingDelete = deviceId;
    byId('delete-device-id').textContent = deviceId;
    const dialog = byId<HTMLDialogElement>('delete-dialog');
    dialog.returnValue = '';
    dialog.showModal();
  }

  private async remove(deviceId: string): Promise<void> {
    try {
      await this.api.deleteDevice(deviceId);
      clearProblem(this.actionProblem);
      // The connection string of a deleted device is of no use any more.
      if (byId('created-device-id').textContent === deviceId) byId('created').hidden = true;
      say(this.status, `Deleted ${deviceId}.`);
      this.figures.delete(deviceId);
      await this.refresh();
    } catch (error) {
      showProblem(this.actionProblem, error);
    }
  }
}

/** Which device row and which of its controls has the focus, if one inside `rows` has. */
function focusedControl(rows: HTMLElement): { deviceId: string; control: string } | undefined {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || !rows.contains(active)) return undefined;
  const deviceId = active.closest('tr')?.dataset.device;
  const control = active.dataset.control;
  return deviceId !== undefined && control !== undefined ? { deviceId, control } : undefined;
}

function refocus(rows: HTMLElement, focused: { deviceId: string; control: string }): void {
  for (const row of rows.querySelectorAll('tr')) {
    if (row.dataset.device !== focused.deviceId) continue;
    row.querySelector<HTMLElement>(`[data-control="${focused.control}"]`)?.focus();
    return;
  }
}
