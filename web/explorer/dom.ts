/** Small DOM helpers: building elements without innerHTML (no markup from data, ever). */
import { ApiProblem } from './api';

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from the page`);
  return element as T;
}

/** Shows a failure in `target` (a role=alert region): the problem's title and detail. */
export function showProblem(target: HTMLElement, error: unknown): void {
  const problem =
    error instanceof ApiProblem
      ? error.problem
      : {
          status: 0,
          title: 'Something went wrong',
          detail: error instanceof Error ? error.message : String(error),
        };
  const title = h('strong', { class: 'problem-title' }, problem.title);
  const detail = h('span', { class: 'problem-detail' }, problem.detail ? ` ${problem.detail}` : '');
  target.replaceChildren(title, detail);
  target.hidden = false;
}

export function clearProblem(target: HTMLElement): void {
  target.replaceChildren();
  target.hidden = true;
}

/** A polite status line (role=status). */
export function say(target: HTMLElement, text: string): void {
  target.textContent = text;
}

/** Runs `task` every `ms` while `active()` holds; one run at a time, failures go to `onError`. */
export function every(
  ms: number,
  task: () => Promise<void>,
  onError: (error: unknown) => void,
): () => void {
  let stopped = false;
  let timer: number | undefined;
  const run = async () => {
    if (stopped) return;
    try {
      await task();
    } catch (error) {
      onError(error);
    }
    if (!stopped) timer = window.setTimeout(() => void run(), ms);
  };
  void run();
  return () => {
    stopped = true;
    if (timer !== undefined) window.clearTimeout(timer);
  };
}
