/**
 * The side panel: the active notebook's DAG with statuses and freshness, validation
 * errors, the parameters form, the runs started here (progress, failure, cancel) and the
 * run history. It renders a FlowModel; each section redraws only when what it shows
 * changed, so typing in a long notebook costs the panel nothing between analyses, and
 * nothing at all while the panel is hidden (it catches up when shown). The DAG's layout
 * is computed in a worker; until the new one is known the previous drawing stays.
 */
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { IProblem, IStep, IStepStatus } from './api';
import { DagDrawing, layoutFor } from './dag';
import { duration, el, statusOf, value, when } from './format';
import { sliced } from './frames';
import { ILayout } from './layout';
import { FlowModel, ILiveRun } from './model';

export interface IPanelActions {
  goToCell(model: FlowModel, index: number, cellId: string | null): void;
  run(model: FlowModel, fromStep: string | null): void;
  openLog(path: string | null, task: string | null): void;
}

type Section = 'head' | 'params' | 'errors' | 'live' | 'dag' | 'failure' | 'history';
const SECTIONS: Section[] = ['head', 'errors', 'params', 'live', 'dag', 'failure', 'history'];

export class FlowPanel extends Widget {
  constructor(private _actions: IPanelActions) {
    super();
    this.id = 'nbflow-panel';
    this.addClass('nbflow-panel');
    this.node.setAttribute('data-nbflow-panel', '');
    this.title.caption = 'nbflow: the notebook as a workflow';
    for (const name of SECTIONS) {
      const section = el('section', { class: `nbflow-section nbflow-section-${name}` });
      this._sections.set(name, section);
      this.node.append(section);
    }
    this._render();
  }

  get model(): FlowModel | null {
    return this._model;
  }

  setModel(model: FlowModel | null): void {
    if (model === this._model) {
      return;
    }
    this._model?.changed.disconnect(this._render, this);
    this._model = model;
    this._keys.clear();
    this._captionKey = '';
    this._drawing = new DagDrawing(NO_ACTIONS); // another notebook: drawn afresh, off the page
    this._drawn = false;
    model?.changed.connect(this._render, this);
    this._paramsOpen = false;
    this._render();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._clientWidth = -1;
    if (this._behind) {
      this._render();
    }
  }

  /** Redraw what changed, in the next frames (see `frames.ts`). */
  private _render(): void {
    if (!this.isVisible) {
      this._behind = true; // nobody sees it: catch up in onAfterShow
      return;
    }
    this._behind = false;
    sliced(this, deadline => this._renderSlice(deadline));
  }

  /** The sections whose content changed; the DAG a slice at a time. True when done. */
  private _renderSlice(deadline: number): boolean {
    if (this.isDisposed || !this.isVisible) {
      this._behind = !this.isDisposed;
      return true;
    }
    this._section('head', this._headKey(), () => this._head());
    this._section('errors', JSON.stringify([
      this._model?.analysis?.errors, this._model?.analysis?.warnings, this._model?.analysisError
    ]), () => this._errors());
    this._section('params', JSON.stringify([
      this._paramsOpen, this._model?.analysis?.parameters, this._model?.runError
    ]), () => this._params());
    this._section('live', JSON.stringify(this._model?.liveRuns ?? []), () => this._live());
    this._section('failure', this._failureKey(), () => this._failure());
    this._section('history', JSON.stringify([this._model?.history, this._model?.selectedRun]),
      () => this._history());
    return this._dagSection(deadline);
  }

  /**
   * The DAG's room: the panel's width less the section's padding, in steps of 8 px. The
   * width is read once per resize (reading it after the page changed makes the browser
   * lay the page out there and then).
   */
  private _width(): number {
    if (this._clientWidth < 0) {
      this._clientWidth = this.node.clientWidth;
    }
    const width = this._clientWidth;
    return width > 0 ? Math.floor((width - 24) / 8) * 8 : 0;
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._clientWidth = -1;
    this._render(); // the DAG is laid out for the panel's width
  }

  private _section(name: Section, key: string, build: () => (Node | string)[]): void {
    if (this._keys.get(name) === key) {
      return;
    }
    this._keys.set(name, key);
    const section = this._sections.get(name)!;
    const children = this._model ? build() : name === 'head' ? build() : [];
    section.replaceChildren(...children);
    section.hidden = children.length === 0;
  }

  private _headKey(): string {
    const m = this._model;
    return JSON.stringify([m?.path, m?.analysis?.flow, m?.activeRuns.length, this._paramsOpen,
      m?.analysis?.parameters.length, m?.analysis?.errors.length]);
  }

  private _head(): (Node | string)[] {
    const m = this._model;
    if (!m) {
      return [
        el('div', { class: 'nbflow-title' }, 'nbflow'),
        el('p', { class: 'nbflow-empty' },
          'Open a notebook with %%step cells to see its workflow here.')
      ];
    }
    const flow = m.analysis?.flow ?? m.path.split('/').pop()?.replace(/\.ipynb$/, '') ?? '';
    const run = el('button', { class: 'nbflow-button nbflow-primary', 'data-nbflow-action': 'run',
      title: 'Save the notebook and run it headless (nbflow execute)' }, '▶ Run');
    if (m.analysis && m.analysis.errors.length) {
      run.setAttribute('disabled', '');
      run.title = 'Fix the errors below first';
    }
    run.addEventListener('click', () => this._actions.run(m, null));
    const cancel = el('button', { class: 'nbflow-button', 'data-nbflow-action': 'cancel',
      title: 'Cancel the newest run started here' }, '■ Cancel');
    if (!m.activeRuns.length) {
      cancel.setAttribute('disabled', '');
    }
    cancel.addEventListener('click', () => void m.cancel());
    const buttons = el('div', { class: 'nbflow-buttons' }, run, cancel);
    if (m.analysis?.parameters.length) {
      const toggle = el('button', { class: `nbflow-button${this._paramsOpen ? ' nbflow-on' : ''}`,
        'data-nbflow-action': 'params', title: 'Run with other parameters' }, 'Parameters');
      toggle.addEventListener('click', () => {
        this._paramsOpen = !this._paramsOpen;
        this._render();
      });
      buttons.append(toggle);
    }
    return [
      el('div', { class: 'nbflow-title' }, el('span', { class: 'nbflow-logo' }, 'nbflow'),
        el('span', { class: 'nbflow-flow', title: m.path }, flow)),
      buttons
    ];
  }

  private _errors(): (Node | string)[] {
    const m = this._model!;
    const out: Node[] = [];
    if (m.analysisError) {
      out.push(el('div', { class: 'nbflow-problem nbflow-error' }, m.analysisError));
    }
    const problem = (p: IProblem, kind: 'error' | 'warning'): Node => {
      const attrs: Record<string, string> = { class: `nbflow-problem nbflow-${kind}` };
      if (kind === 'error') {
        attrs['data-nbflow-error'] = '';
      } else {
        attrs['data-nbflow-warning'] = '';
      }
      if (p.cell !== null && p.cell !== undefined) {
        attrs['data-nbflow-cell'] = String(p.cell);
      }
      const item = el('button', attrs,
        el('span', { class: 'nbflow-problem-cell' }, p.cell ? `cell ${p.cell}` : kind),
        el('span', { class: 'nbflow-problem-text' }, p.message,
          p.hint ? el('span', { class: 'nbflow-hint' }, p.hint) : null));
      item.addEventListener('click', () => {
        if (p.index !== null && p.index !== undefined) {
          this._actions.goToCell(m, p.index, null);
        }
      });
      return item;
    };
    for (const p of m.analysis?.errors ?? []) {
      out.push(problem(p, 'error'));
    }
    for (const p of m.analysis?.warnings ?? []) {
      out.push(problem(p, 'warning'));
    }
    return out;
  }

  private _params(): (Node | string)[] {
    const m = this._model!;
    const out: Node[] = [];
    if (this._paramsOpen && m.analysis?.parameters.length) {
      const form = el('form', { class: 'nbflow-params', 'data-nbflow-params': '' });
      for (const p of m.analysis.parameters) {
        const input = el('input', { name: p.name, value: m.params[p.name] ?? p.source ?? '',
          placeholder: p.required ? 'required' : p.source, spellcheck: 'false' });
        input.addEventListener('input', () => m.setParam(p.name, input.value));
        form.append(el('label', {},
          el('span', { class: 'nbflow-param-name' }, p.name,
            el('span', { class: 'nbflow-param-type' }, p.type ?? 'any')),
          input));
      }
      const submit = el('button', { class: 'nbflow-button nbflow-primary', type: 'submit' },
        '▶ Run with these');
      form.append(submit);
      form.addEventListener('submit', event => {
        event.preventDefault();
        this._actions.run(m, null);
      });
      out.push(form);
    }
    if (m.runError) {
      out.push(el('div', { class: 'nbflow-problem nbflow-error', 'data-nbflow-run-error': '' },
        m.runError));
    }
    return out;
  }

  private _live(): (Node | string)[] {
    const m = this._model!;
    return m.liveRuns.slice().reverse().map(run => this._liveRun(m, run));
  }

  private _liveRun(m: FlowModel, run: ILiveRun): Node {
    const steps = Object.values(run.steps);
    const tasks = steps.reduce((n, s) => n + Math.max(s.tasks, 1), 0);
    const done = steps.reduce((n, s) => n + (isFinished(s) ? Math.max(s.tasks, 1) : s.done), 0);
    const share = tasks ? Math.min(1, done / tasks) : 0;
    const active = run.state === 'starting' || run.state === 'running';
    const card = el('div', { class: `nbflow-live nbflow-status-${run.state}`,
      'data-nbflow-live': run.run ?? run.handle, 'data-nbflow-state': run.state });
    const label = el('button', { class: 'nbflow-live-id', title: 'Show this run on the DAG' },
      run.run ?? 'starting…');
    label.addEventListener('click', () => void m.select(run.run));
    const head = el('div', { class: 'nbflow-live-head' }, label,
      el('span', { class: `nbflow-chip nbflow-status-${run.state}` },
        run.cancelling && active ? 'cancelling…' : run.state),
      run.fromStep ? el('span', { class: 'nbflow-muted' }, `from ${run.fromStep}`) : null);
    if (active) {
      const cancel = el('button', { class: 'nbflow-button nbflow-small',
        'data-nbflow-cancel': run.handle }, 'Cancel');
      if (run.cancelling) {
        cancel.setAttribute('disabled', '');
      }
      cancel.addEventListener('click', () => void m.cancel(run.handle));
      head.append(cancel);
    } else {
      const close = el('button', { class: 'nbflow-icon-button', title: 'Dismiss' }, '×');
      close.addEventListener('click', () => m.dismiss(run.handle));
      head.append(close);
    }
    const bar = el('div', { class: 'nbflow-bar' }, el('div', { class: 'nbflow-bar-fill' }));
    (bar.firstChild as HTMLElement).style.width = `${Math.round(share * 100)}%`;
    card.append(head, bar);
    const fanouts = (m.analysis?.steps ?? []).filter(s => s.kind === 'branch');
    for (const step of fanouts) {
      const s = run.steps[step.name];
      if (s && s.tasks > 1) {
        card.append(el('div', { class: 'nbflow-muted nbflow-foreach', 'data-nbflow-foreach': step.name },
          `${step.name}: ${isFinished(s) ? s.tasks : s.done}/${s.tasks} tasks`));
      }
    }
    if (run.message) {
      card.append(el('div', { class: 'nbflow-problem nbflow-error' }, run.message));
    }
    return card;
  }

  private _dagInput(): { steps: IStep[]; edges: [string, string][];
    statuses: Record<string, IStepStatus>; running: boolean; resumes: string | null;
    checking: Set<string> } | null {
    const m = this._model;
    if (!m?.analysis) {
      return null;
    }
    return { steps: m.analysis.steps, edges: m.analysis.edges, statuses: m.shown().steps,
      running: m.activeRuns.length > 0, resumes: m.selectedRun, checking: m.checking() };
  }

  /**
   * The DAG's section. The layout comes from a worker (it takes seconds for a long
   * notebook); until the new one is known the panel keeps its last drawing. The drawing
   * itself is kept and updated in place (`DagDrawing`); its style follows the panel's width.
   */
  private _dagSection(deadline: number): boolean {
    const m = this._model;
    const input = this._dagInput();
    let message: string | null = null;
    let layout: ILayout | null = null;
    if (!m) {
      message = '';
    } else if (!input) {
      message = m.analysisError ? '' : 'Analysing…';
    } else if (!input.steps.length) {
      message = 'No %%step cells yet. Start a cell with "%%step NAME" to make it a step.';
    } else {
      layout = layoutFor(input, this._width(), () => this._render());
      if (!layout && !this._drawn) {
        message = 'Laying out the graph…';
      }
    }
    const section = this._sections.get('dag')!;
    if (message !== null) {
      this._drawn = false;
      this._section('dag', `message ${message}`, () =>
        message ? [el('p', { class: 'nbflow-empty' }, message)] : []);
      return true;
    }
    if (!layout) {
      return true; // keep the last drawing until the new layout is known
    }
    const actions = {
      select: (step: IStep) => this._actions.goToCell(m!, step.index, m!.cellIdOf(step)),
      runFrom: (step: IStep) => this._actions.run(m!, step.name)
    };
    if (!this._drawn) {
      // The first drawing is made off the page and shown whole, never a part of it.
      if (!this._drawing.update(input!, layout, actions, deadline)) {
        return false;
      }
      this._keys.set('dag', 'drawing');
      section.replaceChildren(this._caption, el('div', { class: 'nbflow-dag-scroll' },
        this._drawing.node), legend());
      section.hidden = false;
      this._drawn = true;
    }
    const shown = m!.shown();
    const caption = JSON.stringify([shown.run, m!.selectedRun, layout.draft ?? false]);
    if (caption !== this._captionKey) {
      this._captionKey = caption;
      this._caption.replaceChildren(
        el('span', {}, shown.run ? `Statuses of ${shown.run}` : 'Never run'),
        layout.draft ? el('span', { class: 'nbflow-dag-drafting' }, 'laying out…') : '',
        m!.selectedRun ? this._followLatest(m!) : '');
    }
    return this._drawing.update(input!, layout, actions, deadline);
  }

  private _followLatest(m: FlowModel): Node {
    const back = el('button', { class: 'nbflow-link' }, 'show latest');
    back.addEventListener('click', () => void m.select(null));
    return back;
  }

  /** What the failure section shows: the failed steps' statuses and their cells. */
  private _failureKey(): string {
    const m = this._model;
    const failed = Object.entries(m?.shown().steps ?? {}).filter(([, s]) => s.status === 'failed');
    return JSON.stringify([failed, failed.map(([name]) =>
      m?.analysis?.steps.find(x => x.name === name)?.cell)]);
  }

  private _failure(): (Node | string)[] {
    const m = this._model!;
    const shown = m.shown();
    const out: Node[] = [];
    for (const [name, s] of Object.entries(shown.steps)) {
      if (s.status !== 'failed') {
        continue;
      }
      const step = m.analysis?.steps.find(x => x.name === name);
      const open = el('button', { class: 'nbflow-link', 'data-nbflow-log': s.task ?? '' },
        'open the executed notebook');
      open.addEventListener('click', () => this._actions.openLog(s.log_path, s.task));
      const goto = el('button', { class: 'nbflow-link' }, step ? `cell ${step.cell}` : '');
      goto.addEventListener('click', () => step && this._actions.goToCell(m, step.index, m.cellIdOf(step)));
      const box = el('div', { class: 'nbflow-failure', 'data-nbflow-failure': name },
        el('div', { class: 'nbflow-failure-head' },
          el('strong', {}, `${name} failed`), step ? goto : null, open),
        s.error ? el('div', { class: 'nbflow-failure-error' }, shortError(s.error, m.path)) : null);
      if (s.traceback) {
        box.append(el('details', { open: '' }, el('summary', {}, 'Traceback'),
          el('pre', { class: 'nbflow-traceback' }, stripAnsi(s.traceback))));
      }
      out.push(box);
    }
    return out;
  }

  private _history(): (Node | string)[] {
    const m = this._model!;
    if (!m.history.length) {
      return [el('h3', {}, 'Runs'), el('p', { class: 'nbflow-empty' }, 'No runs of this notebook yet.')];
    }
    // One tbody per run: its row, then its parameters and metrics on a line of their own
    // (as columns they squeeze everything else out of a sidebar).
    const table = el('table', { class: 'nbflow-history' },
      el('thead', {}, el('tr', {}, ...['Run', 'Status', 'Started', 'Time']
        .map(h => el('th', {}, h)))));
    for (const run of m.history) {
      const body = el('tbody', { 'data-nbflow-run': run.id,
        class: run.id === m.selectedRun ? 'nbflow-selected' : '' },
      el('tr', {},
        el('td', { class: 'nbflow-run-id' }, run.id.split('/').pop() ?? run.id),
        el('td', {}, el('span', { class: `nbflow-chip nbflow-status-${run.status}` }, run.status)),
        el('td', { class: 'nbflow-when' }, when(run.started)),
        el('td', { class: 'nbflow-time' }, duration(run.duration))));
      const params = pairs(run.params);
      const metrics = pairs(run.metrics);
      if (params || metrics) {
        body.append(el('tr', { class: 'nbflow-run-detail' }, el('td', { colspan: '4' },
          params ? el('div', { class: 'nbflow-kv', 'data-nbflow-params-of': run.id },
            el('span', { class: 'nbflow-kv-label' }, 'params '), params) : null,
          metrics ? el('div', { class: 'nbflow-kv', 'data-nbflow-metrics-of': run.id },
            el('span', { class: 'nbflow-kv-label' }, 'metrics '), metrics) : null)));
      }
      body.title = `${run.id}: click to show its statuses on the DAG`;
      body.addEventListener('click', () => void m.select(run.id === m.selectedRun ? null : run.id));
      table.append(body);
    }
    return [el('h3', {}, 'Runs'), el('div', { class: 'nbflow-history-scroll' }, table)];
  }

  private _model: FlowModel | null = null;
  private _sections = new Map<Section, HTMLElement>();
  private _keys = new Map<Section, string>();
  private _paramsOpen = false;
  private _behind = false;
  private _drawing = new DagDrawing(NO_ACTIONS);
  private _drawn = false;
  private _clientWidth = -1;
  private _caption = el('div', { class: 'nbflow-dag-caption' });
  private _captionKey = '';
}

const NO_ACTIONS = { select: () => undefined, runFrom: () => undefined };

function legend(): HTMLElement {
  return el('div', { class: 'nbflow-legend' },
    ...['succeeded', 'cached', 'running', 'failed', 'not-run'].map(s =>
      el('span', { class: `nbflow-legend-item nbflow-status-${s}` }, s.replace('-', ' '))),
    el('span', { class: 'nbflow-legend-item nbflow-legend-stale' }, 'would run'));
}

function isFinished(s: IStepStatus): boolean {
  return !['pending', 'running', 'not-run'].includes(statusOf(s));
}

function pairs(values: Record<string, unknown>): string {
  return Object.entries(values ?? {})
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(', ');
}

/** The error without the notebook's absolute path in front (the panel is for that notebook). */
function shortError(error: string, path: string): string {
  const name = path.split('/').pop() ?? path;
  const at = error.indexOf(`/${name}, `);
  return at >= 0 && error.startsWith('/') ? error.slice(at + 1) : error;
}

/** The traceback as text: no colour codes, no IPython rule of dashes (it only wraps). */
function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '').replace(/^-{20,}\n/, '');
}
