/**
 * The explorer's entry point: the function key (from `#key=…` or typed, kept in sessionStorage
 * only), and which view is shown (`#device=<id>` opens one device).
 */
import './style.css';
import { ApiClient } from './api';
import { ControlView } from './control';
import { DevicesView } from './devices';
import { DeviceView } from './device';
import { byId, every, say, showProblem } from './dom';
import { forgetKey, loadKey, saveKey, takeKeyFromFragment } from './key';

/** The API root: the page is served at `<api root>/explorer/`. */
const apiBase = new URL('../', window.location.href);
const api = new ApiClient(apiBase, () => loadKey(sessionStorage));

let stopList: (() => void) | undefined;
let current: { device: DeviceView; control: ControlView } | undefined;

const devices = new DevicesView(api, (deviceId) => {
  window.location.hash = `device=${encodeURIComponent(deviceId)}`;
});

/** Moves a key in the fragment into sessionStorage and out of the address bar (and history). */
function adoptFragmentKey(): void {
  const { key, rest } = takeKeyFromFragment(window.location.hash);
  if (!key) return;
  saveKey(sessionStorage, key);
  history.replaceState(null, '', `${window.location.pathname}${window.location.search}${rest}`);
}

function selectedDevice(): string | undefined {
  const value = new URLSearchParams(window.location.hash.replace(/^#/, '')).get('device');
  return value ? value : undefined;
}

function showKeyState(): void {
  const hasKey = loadKey(sessionStorage) !== undefined;
  say(
    byId('key-state'),
    hasKey ? 'A key is set for this tab.' : 'No key yet: enter the function key.',
  );
  byId('key-forget').hidden = !hasKey;
}

function route(): void {
  adoptFragmentKey();
  showKeyState();
  const deviceId = selectedDevice();
  current?.device.stop();
  current?.control.stop();
  current = undefined;
  stopList?.();
  stopList = undefined;
  byId('devices').hidden = deviceId !== undefined;
  byId('device').hidden = deviceId === undefined;
  if (!loadKey(sessionStorage)) {
    byId<HTMLInputElement>('key-input').focus();
    return;
  }
  if (deviceId === undefined) {
    stopList = every(
      5_000,
      () => devices.refresh(),
      (error) => showProblem(byId('devices-problem'), error),
    );
    return;
  }
  current = { device: new DeviceView(api, deviceId), control: new ControlView(api, deviceId) };
  current.device.start();
  current.control.start();
  byId('device-title').focus();
}

byId<HTMLFormElement>('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>('key-input');
  if (input.value.trim() === '') return;
  saveKey(sessionStorage, input.value);
  input.value = '';
  route();
});
byId('key-forget').addEventListener('click', () => {
  forgetKey(sessionStorage);
  route();
});
byId('back').addEventListener('click', (event) => {
  event.preventDefault();
  window.location.hash = '';
});
window.addEventListener('hashchange', route);
route();
