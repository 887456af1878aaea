/** Small wording helpers shared by the panel and the badges. */
import { IStep, IStepStatus, StepStatus } from './api';

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  }
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (isNaN(date.getTime())) {
    return iso;
  }
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit',
    hourCycle: 'h23' });
  return date.toDateString() === today.toDateString()
    ? time
    : `${date.toLocaleDateString()} ${time}`;
}

export function statusOf(s: IStepStatus | null | undefined): StepStatus {
  return s?.status ?? 'not-run';
}

/** `succeeded`, `cached from classifier/3`, `running 2/3`, … */
export function statusText(s: IStepStatus | null | undefined): string {
  const status = statusOf(s);
  if (!s) {
    return 'not run';
  }
  if ((status === 'cached' || status === 'cloned') && s.cached_from) {
    return `${status} from ${s.cached_from}`;
  }
  if (status === 'running' && s.tasks > 1) {
    return `running ${s.done}/${s.tasks}`;
  }
  return status === 'not-run' ? 'not run' : status;
}

/** The freshness a badge or node says (`checking`: a run just changed it, see `FlowModel.checking`). */
export function freshText(step: IStep, checking = false): string {
  if (checking) {
    return 'freshness: checking what would run now (a run just finished this step)';
  }
  if (step.fresh === true) {
    return 'fresh: reused from the cache';
  }
  return `would run: ${step.reason ?? 'not run before'}`;
}

/** What "run from here" does, as its tooltip says it. */
export function runFromText(step: IStep, resumes: string | null): string {
  return `Run from here: resume ${resumes ?? 'the latest run'} from ${step.name}`;
}

export function value(v: unknown): string {
  if (typeof v === 'number') {
    return Number.isInteger(v) ? String(v) : v.toPrecision(4).replace(/\.?0+$/, '');
  }
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') {
      node.className = v;
    } else {
      node.setAttribute(k, v);
    }
  }
  for (const child of children) {
    if (child !== null) {
      node.append(child);
    }
  }
  return node;
}

/**
 * What a badge or a DAG node shows. The model keeps a step or status object while it is
 * unchanged, so a view shown the same five values again has nothing to write.
 */
export interface IShown {
  step: IStep;
  status: IStepStatus | null;
  running: boolean;
  /** The run "run from here" resumes. */
  resumes: string | null;
  /** Its freshness is being checked again. */
  checking: boolean;
}

export function sameShown(shown: IShown | null, next: IShown): boolean {
  return shown !== null && shown.step === next.step && shown.status === next.status &&
    shown.running === next.running && shown.resumes === next.resumes &&
    shown.checking === next.checking;
}
