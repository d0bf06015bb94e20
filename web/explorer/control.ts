/**
 * Driving one device: cloud-to-device messages with their delivery status, direct methods, and
 * the twin (reported properties, and desired properties edited against the etag they were read
 * with, so a concurrent change is reported as a conflict instead of being overwritten).
 */
import { ApiProblem, type ApiClient, type Twin } from './api';
import { byId, clearProblem, every, h, say, showProblem } from './dom';
import {
  clockTime,
  isFinalMessageState,
  parseJsonObject,
  parsePayload,
  parseProperties,
  prettyJson,
} from './format';

/** Stop polling a message's status after this long (the hub's default TTL is an hour). */
const statusPollMs = 120_000;

export class ControlView {
  private stops: (() => void)[] = [];
  private twinEtag: string | undefined;
  /** The desired properties' version the editor was filled from. */
  private loadedDesiredVersion: number | undefined;
  private readonly abort = new AbortController();

  constructor(
    private readonly api: ApiClient,
    private readonly deviceId: string,
  ) {}

  start(): void {
    const signal = this.abort.signal;
    byId('c2d-form').addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        void this.send();
      },
      { signal },
    );
    byId('method-form').addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        void this.invoke();
      },
      { signal },
    );
    byId('twin-form').addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        void this.saveDesired();
      },
      { signal },
    );
    byId('twin-reload').addEventListener('click', () => void this.loadTwin(true), { signal });
    byId('c2d-log').replaceChildren();
    byId('method-result').hidden = true;
    byId('twin-desired').dataset.loaded = '';
    this.stops.push(
      every(
        3_000,
        () => this.loadTwin(false),
        (error) => showProblem(byId('twin-problem'), error),
      ),
    );
  }

  stop(): void {
    this.abort.abort();
    for (const stop of this.stops) stop();
    this.stops = [];
  }

  private async send(): Promise<void> {
    const problem = byId('c2d-problem');
    const payload = parsePayload(byId<HTMLTextAreaElement>('c2d-payload').value);
    const properties = parseProperties(byId<HTMLTextAreaElement>('c2d-properties').value);
    if (!payload.ok || !properties.ok) {
      showProblem(
        problem,
        new Error(!payload.ok ? payload.error : !properties.ok ? properties.error : ''),
      );
      return;
    }
    const ack = byId<HTMLSelectElement>('c2d-ack').value;
    const message = {
      payload: payload.value,
      ack,
      ...(Object.keys(properties.value).length ? { properties: properties.value } : {}),
    };
    try {
      const accepted = await this.api.sendMessage(this.deviceId, message);
      clearProblem(problem);
      const status = h('span', { class: 'badge', 'data-status': accepted.status }, accepted.status);
      const item = h(
        'li',
        { 'data-message': accepted.messageId },
        h('code', {}, accepted.messageId),
        ' ',
        status,
      );
      byId('c2d-log').prepend(item);
      if (ack !== 'none' && ack !== 'negative') this.watch(accepted.messageId, status);
      else status.after(' (no delivery feedback with this ack)');
    } catch (error) {
      showProblem(problem, error);
    }
  }

  /** Polls the message status until it is final, showing each change. */
  private watch(messageId: string, badge: HTMLElement): void {
    const started = Date.now();
    const stop = every(
      1_000,
      async () => {
        const current = await this.api.messageStatus(this.deviceId, messageId);
        badge.textContent = current.status;
        badge.dataset.status = current.status;
        if (current.description) badge.title = current.description;
        if (isFinalMessageState(current.status) || Date.now() - started > statusPollMs) stop();
      },
      (error) => {
        showProblem(byId('c2d-problem'), error);
        stop();
      },
    );
    this.stops.push(stop);
  }

  private async invoke(): Promise<void> {
    const problem = byId('method-problem');
    const name = byId<HTMLInputElement>('method-name').value.trim();
    const payload = parsePayload(byId<HTMLTextAreaElement>('method-payload').value);
    const timeout = Number(byId<HTMLInputElement>('method-timeout').value || '30');
    if (!payload.ok) return showProblem(problem, new Error(payload.error));
    const result = byId('method-result');
    say(byId('method-status'), `Calling ${name}…`);
    try {
      const answer = await this.api.invokeMethod(this.deviceId, name, payload.value, timeout);
      clearProblem(problem);
      byId('method-answer-status').textContent = String(answer.status);
      byId('method-answer-payload').textContent = prettyJson(answer.payload);
      result.hidden = false;
      say(byId('method-status'), `${name} answered with status ${answer.status}.`);
    } catch (error) {
      result.hidden = true;
      say(byId('method-status'), '');
      showProblem(problem, error);
    }
  }

  /** Refreshes reported properties; the desired editor is filled only on first load or Reload. */
  private async loadTwin(resetEditor: boolean): Promise<void> {
    const { twin, etag } = await this.api.twin(this.deviceId);
    clearProblem(byId('twin-problem'));
    byId('twin-reported').textContent = prettyJson(twin.reported.properties);
    byId('twin-reported-version').textContent = String(twin.reported.version);
    const editor = byId<HTMLTextAreaElement>('twin-desired');
    if (resetEditor || editor.dataset.loaded !== 'yes') this.fillEditor(twin, etag);
  }

  private fillEditor(twin: Twin, etag: string): void {
    const editor = byId<HTMLTextAreaElement>('twin-desired');
    editor.value = prettyJson(twin.desired.properties);
    editor.dataset.loaded = 'yes';
    this.twinEtag = etag;
    this.loadedDesiredVersion = twin.desired.version;
    byId('twin-etag').textContent = etag;
    byId('twin-desired-version').textContent = String(twin.desired.version);
  }

  /**
   * PATCH with the etag the editor was filled with. The twin etag also moves when the device
   * reports properties; that is no conflict with this edit, so when the desired properties are
   * still at the version the editor shows, the patch is sent once more with the current etag.
   * A change of the desired properties by someone else stays a conflict (412).
   */
  private async patchDesired(
    desired: Record<string, unknown>,
    loadedEtag: string,
  ): Promise<{ twin: Twin; etag: string }> {
    try {
      return await this.api.updateDesired(this.deviceId, desired, loadedEtag);
    } catch (error) {
      if (!(error instanceof ApiProblem && error.problem.status === 412)) throw error;
      const current = await this.api.twin(this.deviceId);
      if (current.twin.desired.version !== this.loadedDesiredVersion) throw error;
      return this.api.updateDesired(this.deviceId, desired, current.etag);
    }
  }

  private async saveDesired(): Promise<void> {
    const problem = byId('twin-problem');
    const desired = parseJsonObject(byId<HTMLTextAreaElement>('twin-desired').value);
    if (!desired.ok) return showProblem(problem, new Error(desired.error));
    if (!this.twinEtag) return showProblem(problem, new Error('The twin has not been read yet.'));
    try {
      const { twin, etag } = await this.patchDesired(desired.value, this.twinEtag);
      clearProblem(problem);
      this.fillEditor(twin, etag);
      say(
        byId('twin-status'),
        `Saved: desired version ${twin.desired.version} at ${clockTime(new Date().toISOString())}.`,
      );
    } catch (error) {
      showProblem(problem, error);
      if (error instanceof ApiProblem && error.problem.status === 412) {
        say(
          byId('twin-status'),
          'Someone changed the desired properties since they were loaded: nothing was overwritten. Reload, then edit again.',
        );
      }
    }
  }
}
