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
import { duration, el, freshText, statusOf, statusText } from './format';
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
  }

  render(step: IStep, status: IStepStatus | null, running: boolean): void {
    const state = statusOf(status);
    const fresh = step.fresh === true;
    const key = JSON.stringify([step, status, running]);
    if (key === this._key) {
      return;
    }
    this._key = key;
    const node = this.node;
    node.dataset.nbflowBadge = step.name;
    node.dataset.nbflowStatus = state;
    node.dataset.nbflowFresh = String(fresh);
    const kind = el('span', { class: `nbflow-kind nbflow-kind-${step.kind}` },
      step.kind === 'branch' ? 'branch' : 'step');
    const name = el('button', { class: 'nbflow-badge-name', title: 'Show in the nbflow panel' },
      step.name);
    name.addEventListener('click', () => this._actions.showPanel());
    const upstream = el('span', { class: 'nbflow-badge-upstream' },
      step.upstream.length ? `← ${step.upstream.join(', ')}` : '← no upstream');
    let label = statusText(status);
    if (status?.duration && state !== 'cached') {
      label += ` · ${duration(status.duration)}`;
    }
    if (step.kind === 'branch' && status && status.tasks > 0 && state !== 'running') {
      label += ` · ${status.tasks} tasks`;
    }
    const chip = el('span', { class: `nbflow-chip nbflow-status-${state}`, title: status?.error ?? '' },
      label);
    const freshness = el('span', {
      class: `nbflow-fresh ${fresh ? 'nbflow-is-fresh' : 'nbflow-is-stale'}`,
      title: freshText(step)
    }, fresh ? 'fresh' : `stale: ${step.reason ?? 'not run before'}`);
    const runFrom = el('button', {
      class: 'nbflow-badge-runfrom',
      title: `Run from here: resume the latest run from ${step.name}`,
      'data-nbflow-run-from': step.name
    }, '▶ run from here');
    if (running) {
      runFrom.setAttribute('disabled', '');
    }
    runFrom.addEventListener('click', () => this._actions.runFrom(this._model, step.name));
    node.replaceChildren(kind, name, upstream, chip, freshness, runFrom);
  }

  private _key = '';
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
    this._model.changed.disconnect(this._schedule, this);
  }

  private _schedule(): void {
    if (this._frame === null) {
      this._frame = window.requestAnimationFrame(() => {
        this._frame = null;
        this._reconcile();
      });
    }
  }

  /** Put a badge on each step cell, update it, and drop badges of cells that are no steps. */
  private _reconcile(): void {
    if (this._panel.isDisposed) {
      return;
    }
    const steps = this._model.stepByCellId();
    const running = this._model.activeRuns.length > 0;
    const statuses = this._model.shown().steps;
    const seen = new Set<string>();
    for (const cell of this._panel.content.widgets) {
      const id = cell.model.id;
      const step = cell.model.type === 'code' ? steps.get(id) : undefined;
      let badge = this._badges.get(id);
      if (!step) {
        continue;
      }
      seen.add(id);
      if (badge && badge.cell !== cell) {
        badge.dispose(); // the cell widget was replaced (e.g. its type changed and back)
        badge = undefined;
      }
      if (!badge) {
        badge = new Badge(cell, this._actions, this._model);
        this._badges.set(id, badge);
      }
      badge.render(step, statuses[step.name] ?? null, running);
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
    for (const [id, badge] of this._badges) {
      if (!seen.has(id)) {
        badge.dispose();
        this._badges.delete(id);
      }
    }
  }

  private _badges = new Map<string, Badge>();
  private _watched = new WeakSet<Cell>();
  private _frame: number | null = null;
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
