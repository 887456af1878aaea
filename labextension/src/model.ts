/**
 * The state of one open notebook as nbflow sees it: the last analysis of its current
 * (unsaved) cells, the latest run's statuses, the runs started from this page, and the
 * run history. It owns every server call for the notebook and emits `changed`; the panel
 * and the badges only render it. It never writes to the notebook model.
 */
import { NotebookPanel } from '@jupyterlab/notebook';
import type { ICellModel } from '@jupyterlab/cells';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from './api';

/** How long typing must pause before the cells are analysed again. */
const ANALYSE_DELAY_MS = 350;
/** How often the history and statuses refresh while a run is in progress. */
const REFRESH_MS = 1500;

export type Change = 'analysis' | 'status' | 'history' | 'live' | 'params';

/** A run started from this page, followed through its event stream. */
export interface ILiveRun {
  handle: string;
  run: string | null;
  /** `starting`, `running`, then the run's final status. */
  state: string;
  steps: Record<string, api.IStepStatus>;
  returncode: number | null;
  fromStep: string | null;
  message: string | null;
  cancelling: boolean;
  /** The catalog's statuses and the freshness after the run's end have been read. */
  settled: boolean;
}

const ACTIVE_RUN = new Set(['starting', 'running']);
/** Step statuses of a run still deciding (anything else is the task's outcome). */
const UNFINISHED = new Set<string>(['pending', 'running', 'not-run']);

type ISharedCell = ICellModel['sharedModel'];

/** A cell's part of the last analyse request, as sent. */
interface ISentCell {
  type: string;
  source: string;
  id: string;
  tags: unknown[] | null;
  json: string;
}

export class FlowModel {
  constructor(readonly panel: NotebookPanel) {
    panel.context.ready.then(() => {
      if (this._disposed) {
        return;
      }
      panel.context.model.contentChanged.connect(this._scheduleAnalysis, this);
      panel.context.pathChanged.connect(this._onPathChanged, this);
      this.analyseNow();
      void this.refresh();
    });
  }

  get changed(): ISignal<this, Change> {
    return this._changed;
  }

  get path(): string {
    return this.panel.context.path;
  }

  get analysis(): api.IAnalysis | null {
    return this._analysis;
  }

  /** Why the last analysis could not be made (the server's words), if it failed. */
  get analysisError(): string | null {
    return this._analysisError;
  }

  get latest(): api.IStatus | null {
    return this._latest;
  }

  get history(): api.IHistoryRun[] {
    return this._history;
  }

  get liveRuns(): ILiveRun[] {
    return [...this._live.values()];
  }

  get activeRuns(): ILiveRun[] {
    return this.liveRuns.filter(r => ACTIVE_RUN.has(r.state));
  }

  /** The run the DAG shows: one picked in the history, else the newest live run, else the latest. */
  get selectedRun(): string | null {
    return this._selected;
  }

  get runError(): string | null {
    return this._runError;
  }

  get params(): Record<string, string> {
    return this._params;
  }

  /** The cell model id of the cell a step came from, as of the last analysis. */
  cellIdOf(step: api.IStep): string | null {
    return this._cellIds[step.index] ?? step.cell_id;
  }

  stepByCellId(): Map<string, api.IStep> {
    const byCell = new Map<string, api.IStep>();
    for (const step of this._analysis?.steps ?? []) {
      const id = this.cellIdOf(step);
      if (id) {
        byCell.set(id, step);
      }
    }
    return byCell;
  }

  /** The per-step statuses to show, and the run they belong to. */
  shown(): { run: string | null; steps: Record<string, api.IStepStatus> } {
    if (this._selected) {
      const live = this.liveRuns.find(r => r.run === this._selected);
      if (live) {
        return { run: live.run, steps: live.steps };
      }
      if (this._selectedStatus) {
        return { run: this._selected, steps: this._selectedStatus.steps };
      }
    }
    // The newest run going; else one that has ended but whose statuses and freshness are
    // not read back yet (showing `latest` meanwhile flashed the run before it).
    const unsettled = this.liveRuns.filter(r => !r.settled);
    const newest = unsettled.filter(r => ACTIVE_RUN.has(r.state)).pop() ?? unsettled.pop();
    if (newest) {
      return { run: newest.run, steps: newest.steps };
    }
    return { run: this._latest?.run?.id ?? null, steps: this._latest?.steps ?? {} };
  }

  /**
   * The steps whose freshness the last analysis no longer tells: a run started here that
   * is not settled yet has finished their tasks (new cache entries, or a failure), and the
   * analysis after its end will say again what would run.
   */
  checking(): Set<string> {
    const names = new Set<string>();
    for (const live of this._live.values()) {
      if (!live.settled) {
        for (const [name, s] of Object.entries(live.steps)) {
          if (!UNFINISHED.has(s.status)) {
            names.add(name);
          }
        }
      }
    }
    return names;
  }

  stepStatus(name: string): api.IStepStatus | null {
    return this.shown().steps[name] ?? null;
  }

  setParam(name: string, value: string): void {
    this._params = { ...this._params, [name]: value };
  }

  async select(run: string | null): Promise<void> {
    this._selected = run;
    this._selectedStatus = null;
    this._changed.emit('status');
    if (run) {
      try {
        this._selectedStatus = await api.status(this.path, run);
      } catch (reason) {
        this._selectedStatus = null;
      }
      if (this._selected === run) {
        this._changed.emit('status');
      }
    }
  }

  /** Save the notebook and start `nbflow execute` on the server. */
  async run(fromStep: string | null = null): Promise<void> {
    this._runError = null;
    this._changed.emit('live');
    try {
      if (this.panel.context.model.dirty) {
        await this.panel.context.save();
      }
      // "Run from here" resumes the run the DAG shows: one picked in the history, else the
      // latest run as the catalog has it when the server gets the request (resume: null),
      // not the one this page last read: a run that has just ended may not be in `latest`
      // yet, and resuming the one before re-ran its steps.
      const resume = fromStep ? this._selected : null;
      const started = await api.startRun(this.path, this._changedParams(fromStep), resume,
        fromStep);
      this._selected = null;
      const attached = this._live.get(started.handle);
      if (attached) {
        attached.fromStep = fromStep; // a history refresh saw it first and follows it
        this._changed.emit('live');
        return;
      }
      this._followNew(started.handle, started.run, 'starting', fromStep);
    } catch (reason) {
      this._runError = describe(reason);
      this._changed.emit('live');
    }
  }

  /** Cancel one run started here, or the newest one still going. */
  async cancel(handle?: string): Promise<void> {
    const live = handle ? this._live.get(handle) : this.activeRuns[this.activeRuns.length - 1];
    if (!live || !ACTIVE_RUN.has(live.state)) {
      return;
    }
    live.cancelling = true;
    this._changed.emit('live');
    try {
      await api.cancel(live.handle);
    } catch (reason) {
      live.message = describe(reason);
      live.cancelling = false;
      this._changed.emit('live');
    }
  }

  dismiss(handle: string): void {
    const live = this._live.get(handle);
    if (live && !ACTIVE_RUN.has(live.state)) {
      this._live.delete(handle);
      this._changed.emit('live');
    }
  }

  /** Re-read the latest run's statuses and the history (`emit`: say what changed). */
  async refresh(emit = true): Promise<void> {
    const path = this.path;
    const [latest, history] = await Promise.allSettled([api.status(path), api.history(path)]);
    if (this._disposed || path !== this.path) {
      return;
    }
    if (latest.status === 'fulfilled') {
      this._latest = latest.value;
      if (emit) {
        this._changed.emit('status');
      }
    }
    if (history.status === 'fulfilled') {
      this._history = history.value.runs;
      if (emit) {
        this._changed.emit('history');
      }
      this._attach(history.value.active ?? []);
    }
    if (this._selected && !this.liveRuns.some(r => r.run === this._selected)) {
      const selected = this._history.find(r => r.id === this._selected);
      if (selected && selected.status === 'running') {
        void this.select(this._selected);
      }
    }
  }

  /**
   * Follow the runs the server is running for this notebook that this page does not
   * follow yet: after a reload, or started from another page.
   */
  private _attach(active: api.IActiveRun[]): void {
    for (const run of active) {
      if (!run.done && !this._live.has(run.handle)) {
        this._followNew(run.handle, run.run, run.run ? 'running' : 'starting', run.from ?? null);
      }
    }
  }

  private _followNew(handle: string, run: string | null, state: string,
    fromStep: string | null): void {
    const live: ILiveRun = {
      handle,
      run,
      state,
      steps: this._pendingSteps(),
      returncode: null,
      fromStep,
      message: null,
      cancelling: false,
      settled: false
    };
    this._live.set(handle, live);
    this._changed.emit('live');
    this._startRefreshing();
    void this._follow(live);
  }

  analyseNow(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    void this._analyse();
  }

  dispose(): void {
    this._disposed = true;
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    this._stopRefreshing();
    Signal.clearData(this);
  }

  private _scheduleAnalysis(): void {
    // Called on every keystroke: only move the timer, do no work here.
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
    this._timer = window.setTimeout(() => {
      this._timer = null;
      void this._analyse();
    }, ANALYSE_DELAY_MS);
  }

  private _onPathChanged(): void {
    this.analyseNow();
    void this.refresh();
  }

  /** Analyse the cells as they are now; emit `analysis` if it changed (or say so, if not `emit`). */
  private async _analyse(emit = true): Promise<boolean> {
    const model = this.panel.context.model;
    const cells: string[] = [];
    const ids: string[] = [];
    for (const cell of model.sharedModel.cells) {
      cells.push(this._cellJson(cell));
      ids.push(cell.getId());
    }
    const sequence = ++this._sequence;
    try {
      const metadata = model.sharedModel.getMetadata() as Record<string, unknown>;
      const known = this._analysis && sameList(ids, this._cellIds) ? this._reply : null;
      const reply = await api.analyze(this.path, cells, metadata, known);
      if (sequence !== this._sequence || this._disposed) {
        return false; // a newer analysis is on its way
      }
      this._reply = reply.text;
      const next = reply.analysis ? shareUnchanged(this._analysis, reply.analysis) : this._analysis!;
      const same = next === this._analysis && this._analysisError === null &&
        sameList(ids, this._cellIds);
      this._analysis = next;
      this._analysisError = null;
      this._cellIds = ids;
      this._seedParams(next.parameters);
      if (same) {
        return false; // typing that changes nothing nbflow shows (a comment, a value) redraws nothing
      }
    } catch (reason) {
      if (sequence !== this._sequence || this._disposed) {
        return false;
      }
      this._analysisError = describe(reason);
    }
    if (emit) {
      this._changed.emit('analysis');
    }
    return true;
  }

  /**
   * A cell as the analyse request sends it, as JSON text: its type, source, id and tags
   * (the only metadata the analysis reads; the rest can be large). The text is kept while
   * the cell is unchanged, so a request for a long notebook costs little more than
   * reading each cell's source.
   */
  private _cellJson(cell: ISharedCell): string {
    const type = cell.cell_type;
    const source = cell.getSource();
    const id = cell.getId();
    const tags = cell.getMetadata('tags');
    const known = this._sent.get(cell);
    if (known && known.type === type && known.source === source && known.id === id &&
        sameTags(known.tags, tags)) {
      return known.json;
    }
    const metadata = Array.isArray(tags) ? { tags } : {};
    const json = JSON.stringify({ cell_type: type, source, metadata, id });
    this._sent.set(cell, { type, source, id, tags: Array.isArray(tags) ? [...tags] : null, json });
    return json;
  }

  private _seedParams(parameters: api.IParameter[]): void {
    const next: Record<string, string> = {};
    for (const p of parameters) {
      next[p.name] = this._params[p.name] ?? p.source ?? '';
    }
    const before = JSON.stringify(this._params);
    this._params = next;
    const defaults = JSON.stringify(parameters.map(p => [p.name, p.source]));
    if (before !== JSON.stringify(next) || defaults !== this._paramDefaults) {
      this._paramDefaults = defaults;
      this._changed.emit('params');
    }
  }

  /** The form's values that differ from the notebook's defaults, as `-p` text. */
  private _changedParams(fromStep: string | null): Record<string, string> {
    if (fromStep) {
      return {}; // a resumed run keeps its origin run's parameters
    }
    const out: Record<string, string> = {};
    for (const p of this._analysis?.parameters ?? []) {
      const value = this._params[p.name];
      if (value === undefined) {
        continue;
      }
      if (p.required || value.trim() !== (p.source ?? '').trim()) {
        out[p.name] = unquote(value, p);
      }
    }
    return out;
  }

  private _pendingSteps(): Record<string, api.IStepStatus> {
    const steps: Record<string, api.IStepStatus> = {};
    for (const step of this._analysis?.steps ?? []) {
      steps[step.name] = emptyStatus('pending');
    }
    return steps;
  }

  private async _follow(live: ILiveRun): Promise<void> {
    let since = 0;
    let failures = 0;
    while (!this._disposed) {
      let batch: api.IEvents;
      try {
        batch = await api.events(live.handle, since);
        failures = 0;
      } catch (reason) {
        if (++failures > 5) {
          live.state = 'failed';
          live.message = `lost the run's event stream: ${describe(reason)}`;
          this._changed.emit('live');
          break;
        }
        await sleep(1000);
        continue;
      }
      since = batch.next;
      live.run = batch.run ?? live.run;
      for (const event of batch.events) {
        applyEvent(live, event);
      }
      if (batch.done) {
        live.returncode = batch.returncode;
        if (ACTIVE_RUN.has(live.state)) {
          live.state = batch.returncode === 0 ? 'succeeded' : exitState(batch.returncode);
        }
      }
      this._changed.emit('live');
      await this._refreshLive(live);
      if (batch.done) {
        break;
      }
    }
    live.cancelling = false;
    // The catalog's statuses and the freshness the run leaves (new cache entries) are read
    // together and shown at once: the statuses alone paired "failed" with the freshness of
    // before the run ("stale: not run before") until the analysis came back.
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    const [, analysed] = await Promise.all([this.refresh(false), this._analyse(false)]);
    live.settled = true;
    if (this.activeRuns.length === 0) {
      this._stopRefreshing();
    }
    if (analysed) {
      this._changed.emit('analysis');
    }
    this._changed.emit('status');
    this._changed.emit('history');
    this._changed.emit('live');
  }

  /** The server's word on the live run's statuses (task counts, durations, errors). */
  private async _refreshLive(live: ILiveRun): Promise<void> {
    if (!live.run) {
      return;
    }
    const now = Date.now();
    const last = this._liveFetched.get(live.handle) ?? 0;
    if (now - last < 800 && ACTIVE_RUN.has(live.state)) {
      return;
    }
    this._liveFetched.set(live.handle, now);
    try {
      const status = await api.status(this.path, live.run);
      if (status.run?.id === live.run) {
        live.steps = furthest(live.steps, status.steps);
        if (status.run.status !== 'running' && ACTIVE_RUN.has(live.state)) {
          live.state = status.run.status;
        } else if (live.state === 'starting') {
          live.state = 'running';
        }
        this._changed.emit('live');
      }
    } catch {
      // the events keep the picture going; the next batch tries again
    }
  }

  /**
   * Refresh the history and statuses every REFRESH_MS while runs go: each refresh is
   * scheduled when the previous one has answered, so a slow server never piles them up.
   */
  private _startRefreshing(): void {
    if (this._refresher !== null || this._disposed) {
      return;
    }
    const timer = window.setTimeout(async () => {
      try {
        await this.refresh();
      } finally {
        if (this._refresher === timer) { // not stopped (or restarted) meanwhile
          this._refresher = null;
          if (this.activeRuns.length > 0) {
            this._startRefreshing();
          }
        }
      }
    }, REFRESH_MS);
    this._refresher = timer;
  }

  private _stopRefreshing(): void {
    if (this._refresher !== null) {
      window.clearTimeout(this._refresher);
      this._refresher = null;
    }
  }

  private _changed = new Signal<this, Change>(this);
  private _analysis: api.IAnalysis | null = null;
  private _analysisError: string | null = null;
  private _cellIds: string[] = [];
  private _latest: api.IStatus | null = null;
  private _history: api.IHistoryRun[] = [];
  private _live = new Map<string, ILiveRun>();
  private _liveFetched = new Map<string, number>();
  private _selected: string | null = null;
  private _selectedStatus: api.IStatus | null = null;
  private _params: Record<string, string> = {};
  private _paramDefaults = '';
  private _runError: string | null = null;
  private _timer: number | null = null;
  private _refresher: number | null = null;
  private _sequence = 0;
  private _sent = new WeakMap<ISharedCell, ISentCell>();
  /** The text of the reply `_analysis` was read from. */
  private _reply: string | null = null;
  private _disposed = false;
}

/**
 * The new analysis, with every part that equals the previous one's (each step, the edges,
 * the errors, the warnings, the parameters) replaced by the previous object; the previous
 * analysis itself when nothing changed. The views compare by identity: an analysis after
 * a keystroke in one cell changes a few steps, and redrawing the others is what costs.
 */
export function shareUnchanged(before: api.IAnalysis | null, after: api.IAnalysis): api.IAnalysis {
  if (!before) {
    return after;
  }
  const old = new Map(before.steps.map(s => [s.name, s]));
  let same = before.flow === after.flow && before.steps.length === after.steps.length;
  const steps = after.steps.map((step, i) => {
    const was = old.get(step.name);
    const kept = was && jsonOf(was) === jsonOf(step) ? was : step;
    same = same && kept === before.steps[i];
    return kept;
  });
  const part = <T>(a: T, b: T): T => (JSON.stringify(a) === JSON.stringify(b) ? a : b);
  const edges = part(before.edges, after.edges);
  const errors = part(before.errors, after.errors);
  const warnings = part(before.warnings, after.warnings);
  const parameters = part(before.parameters, after.parameters);
  if (same && edges === before.edges && errors === before.errors &&
      warnings === before.warnings && parameters === before.parameters) {
    return before;
  }
  return { ...after, steps, edges, errors, warnings, parameters };
}

/** A step's JSON text, made once per step object (steps are never changed in place). */
function jsonOf(step: api.IStep): string {
  let text = stepJson.get(step);
  if (text === undefined) {
    text = JSON.stringify(step);
    stepJson.set(step, text);
  }
  return text;
}

const stepJson = new WeakMap<api.IStep, string>();

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameTags(known: unknown[] | null, tags: unknown): boolean {
  if (!Array.isArray(tags)) {
    return known === null;
  }
  return known !== null && known.length === tags.length && known.every((t, i) => t === tags[i]);
}

export function emptyStatus(status: api.StepStatus): api.IStepStatus {
  return {
    status,
    duration: null,
    tasks: 0,
    done: 0,
    cached_from: null,
    error: null,
    traceback: null,
    task: null,
    log_path: null
  };
}

/**
 * The server's step statuses over the ones the events gave, except where the events are
 * further along: the catalog is written in batches and can lag the event stream by a
 * second on a busy machine, and a step the events had seen fail showed "pending" again.
 */
function furthest(events: Record<string, api.IStepStatus>,
  catalog: Record<string, api.IStepStatus>): Record<string, api.IStepStatus> {
  const out = { ...events };
  for (const [name, step] of Object.entries(catalog)) {
    const seen = events[name];
    out[name] = seen && stage(seen.status) > stage(step.status) ? seen : step;
  }
  return out;
}

/** How far along a step of a live run is: not started, running, or ended. */
function stage(status: string): number {
  return UNFINISHED.has(status) ? (status === 'running' ? 1 : 0) : 2;
}

function applyEvent(live: ILiveRun, event: api.IRunEvent): void {
  live.run = event.run ?? live.run;
  const step = event.step ?? null;
  const current = step ? (live.steps[step] ?? emptyStatus('pending')) : null;
  switch (event.kind) {
    case 'run-started':
      live.state = 'running';
      break;
    case 'task-started':
      if (step && current) {
        live.steps[step] = { ...current, status: 'running' };
      }
      live.state = live.state === 'starting' ? 'running' : live.state;
      break;
    case 'fan-out':
      if (step && current) {
        live.steps[step] = { ...current, tasks: Number(event.tasks) || current.tasks };
      }
      break;
    case 'task-finished':
      if (step && current) {
        const retrying = String(event.note ?? '').startsWith('retrying');
        const done = retrying ? current.done : current.done + 1;
        const tasks = Math.max(current.tasks, done, 1);
        let state = current.status;
        if (event.status === 'failed' && !retrying) {
          state = 'failed';
        } else if (done >= tasks && state !== 'failed' && event.status) {
          state = event.status as api.StepStatus;
        }
        live.steps[step] = { ...current, done, tasks, status: state,
          duration: (current.duration ?? 0) + (Number(event.seconds) || 0) };
      }
      break;
    case 'step-finished':
      if (step && current && event.status) {
        live.steps[step] = { ...current, status: event.status as api.StepStatus };
      }
      break;
    case 'run-finished':
      if (event.status) {
        live.state = event.status;
      }
      break;
  }
}

function exitState(code: number | null): string {
  return code === 130 || code === 143 ? 'cancelled' : 'failed';
}

/** A string parameter typed with its quotes (as the default's source shows it) goes as text. */
function unquote(value: string, p: api.IParameter): string {
  const text = value.trim();
  if (p.type === 'str' && text.length >= 2 && /^(['"]).*\1$/s.test(text)) {
    return text.slice(1, -1);
  }
  return value;
}

export function describe(reason: unknown): string {
  if (reason instanceof api.ApiError) {
    return reason.hint ? `${reason.message} (${reason.hint})` : reason.message;
  }
  return reason instanceof Error ? reason.message : String(reason);
}

function sleep(ms: number): Promise<void> {
  return new Promise(resolve => window.setTimeout(resolve, ms));
}
