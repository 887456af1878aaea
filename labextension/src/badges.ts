/**
 * A badge on every %%step / %%branch cell: name, upstream steps, last status and
 * freshness. Badges are widgets inserted into the cell widget's layout (view state):
 * they never touch the cell model, so they cannot make the notebook dirty.
 *
 * JupyterLab 4's windowed notebook creates a cell's DOM lazily and detaches cells that
 * scroll away; a badge lives in the cell widget's layout, so it goes and comes back with
 * the cell. A badge is (re)attached after `cell.ready`, keyed by cell model id, and the
 * whole set is reconciled when the cell list changes (add, move, delete, change type).
 */
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';

import { IStep, IStepStatus } from './api';
import {
  IShown, duration, el, freshText, runFromText, sameShown, statusOf, statusText
} from './format';
import { cancelSliced, sliced } from './frames';
import { FlowModel } from './model';

export interface IBadgeActions {
  runFrom(model: FlowModel, step: string): void;
  showPanel(): void;
}

class Badge extends Widget {
  constructor(
    readonly cell: Cell,
    private _actions: IBadgeActions,
    private _model: FlowModel
  ) {
    super();
    this.addClass('nbflow-badge-bar');
    this._name.addEventListener('click', () => this._actions.showPanel());
    this._runFrom.addEventListener('click', () => {
      if (this._shown) {
        this._actions.runFrom(this._model, this._shown.step.name);
      }
    });
    this.node.append(this._kind, this._name, this._upstream, this._chip, this._fresh,
      this._runFrom);
  }

  /**
   * Show the step. The model keeps a step or status object while it is unchanged, so a
   * badge whose step, status and running flag are the ones it shows does nothing; else
   * only the texts and attributes that differ are written (an edit near the top of a long
   * notebook turns hundreds of badges stale at once).
   */
  render(step: IStep, status: IStepStatus | null, running: boolean, checking: boolean): void {
    const resumes = this._model.selectedRun;
    const shown = { step, status, running, resumes, checking };
    if (sameShown(this._shown, shown)) {
      return;
    }
    this._shown = shown;
    const state = statusOf(status);
    const fresh = step.fresh === true;
    const node = this.node;
    set(node.dataset, 'nbflowBadge', step.name);
    set(node.dataset, 'nbflowStatus', state);
    set(node.dataset, 'nbflowFresh', String(fresh));
    write(this._kind, `nbflow-kind nbflow-kind-${step.kind}`,
      step.kind === 'branch' ? 'branch' : 'step');
    write(this._name, 'nbflow-badge-name', step.name);
    write(this._upstream, 'nbflow-badge-upstream',
      step.upstream.length ? `← ${step.upstream.join(', ')}` : '← no upstream');
    let label = statusText(status);
    if (status?.duration && state !== 'cached') {
      label += ` · ${duration(status.duration)}`;
    }
    if (step.kind === 'branch' && status && status.tasks > 0 && state !== 'running') {
      label += ` · ${status.tasks} tasks`;
    }
    write(this._chip, `nbflow-chip nbflow-status-${state}`, label, status?.error ?? '');
    write(this._fresh, `nbflow-fresh ${checking ? 'nbflow-is-checking' : fresh ? 'nbflow-is-fresh' : 'nbflow-is-stale'}`,
      checking ? 'checking…' : fresh ? 'fresh' : `stale: ${step.reason ?? 'not run before'}`,
      freshText(step, checking));
    write(this._runFrom, 'nbflow-badge-runfrom', '▶ run from here',
      runFromText(step, resumes));
    set(this._runFrom.dataset, 'nbflowRunFrom', step.name);
    this._runFrom.disabled = running;
  }

  private _shown: IShown | null = null;
  private _kind = el('span');
  private _name = el('button', { title: 'Show in the nbflow panel' });
  private _upstream = el('span');
  private _chip = el('span');
  private _fresh = el('span');
  private _runFrom = el('button');
}

/** Write what differs: a DOM write the badge already shows still costs style work. */
function write(node: HTMLElement, className: string, text: string, title?: string): void {
  if (node.className !== className) {
    node.className = className;
  }
  if (node.textContent !== text) {
    node.textContent = text;
  }
  if (title !== undefined && node.title !== title) {
    node.title = title;
  }
}

function set(map: DOMStringMap, key: string, value: string): void {
  if (map[key] !== value) {
    map[key] = value;
  }
}

export class CellBadges {
  constructor(
    private _panel: NotebookPanel,
    private _model: FlowModel,
    private _actions: IBadgeActions
  ) {
    _model.changed.connect(this._schedule, this);
    _panel.context.ready.then(() => {
      _panel.content.model?.cells.changed.connect(this._schedule, this);
    });
    _panel.disposed.connect(() => this.dispose());
  }

  dispose(): void {
    for (const badge of this._badges.values()) {
      badge.dispose();
    }
    this._badges.clear();
    cancelSliced(this);
    this._model.changed.disconnect(this._schedule, this);
  }

  private _schedule(): void {
    this._pass = null; // what changed may concern cells the current pass has done
    sliced(this, deadline => this._step(deadline));
  }

  /**
   * Bring the badges up to date until `deadline` (see `frames.ts`); true when all are. The
   * next slice goes on where this one stopped, so a change to hundreds of badges never
   * holds a frame (and the keystroke typed meanwhile) back.
   */
  private _step(deadline: number): boolean {
    if (this._panel.isDisposed) {
      return true;
    }
    if (this._pass === null) {
      this._pass = {
        next: 0,
        steps: this._model.stepByCellId(),
        running: this._model.activeRuns.length > 0,
        statuses: this._model.shown().steps,
        checking: this._model.checking(),
        seen: new Set<string>()
      };
    }
    const pass = this._pass;
    const cells = this._panel.content.widgets;
    while (pass.next < cells.length) {
      this._reconcile(cells[pass.next++], pass);
      if (pass.next % 8 === 0 && performance.now() >= deadline) {
        return false;
      }
    }
    this._pass = null;
    for (const [id, badge] of this._badges) {
      if (!pass.seen.has(id)) {
        badge.dispose();
        this._badges.delete(id);
      }
    }
    return true;
  }

  /** Put a badge on the cell if it is a step's, and update it. */
  private _reconcile(cell: Cell, pass: IPass): void {
    const id = cell.model.id;
    const step = cell.model.type === 'code' ? pass.steps.get(id) : undefined;
    if (!step) {
      return;
    }
    pass.seen.add(id);
    let badge = this._badges.get(id);
    if (badge && badge.cell !== cell) {
      badge.dispose(); // the cell widget was replaced (e.g. its type changed and back)
      badge = undefined;
    }
    if (!badge) {
      badge = new Badge(cell, this._actions, this._model);
      this._badges.set(id, badge);
    }
    badge.render(step, pass.statuses[step.name] ?? null, pass.running,
      pass.checking.has(step.name));
    attach(badge, cell);
    if (!this._watched.has(cell)) {
      // The windowed notebook renders and re-attaches a cell as it scrolls into view.
      this._watched.add(cell);
      cell.inViewportChanged.connect((c, inView) => {
        const b = this._badges.get(c.model.id);
        if (inView && b && b.cell === c) {
          attach(b, c);
        }
      });
    }
  }

  private _badges = new Map<string, Badge>();
  private _watched = new WeakSet<Cell>();
  private _pass: IPass | null = null;
}

/** A reconciliation under way: how far it got, and what it brings the badges to. */
interface IPass {
  next: number;
  steps: Map<string, IStep>;
  running: boolean;
  statuses: Record<string, IStepStatus>;
  checking: Set<string>;
  seen: Set<string>;
}


/**
 * Insert the badge above the cell's input once the cell has built its DOM.
 *
 * Being in the cell's layout is what counts, not being in its DOM: the windowed notebook
 * takes a cell's children out of the page while it is scrolled away and puts them back
 * itself. Never `removeWidget` a badge that is not in the layout: Lumino then removes
 * the layout's last widget instead (index -1), which emptied scrolled-away step cells.
 */
function attach(badge: Badge, cell: Cell): void {
  const inLayout = () => (cell.layout as PanelLayout).widgets.includes(badge);
  if (badge.parent === cell && inLayout()) {
    return;
  }
  void cell.ready.then(() => {
    if (badge.isDisposed || cell.isDisposed || inLayout()) {
      return;
    }
    const layout = cell.layout as PanelLayout;
    const input = layout.widgets.findIndex(w => w.hasClass('jp-Cell-inputWrapper'));
    layout.insertWidget(input >= 0 ? input : 0, badge);
  });
}
