/**
 * The DAG as SVG: dagre lays it out (in a worker, `layout.ts`), this draws it. A node per
 * step (a branch as a stack of cards with its task count), edges as curves with arrowheads.
 */
import { IStep, IStepStatus } from './api';
import { duration, freshText, statusOf, statusText } from './format';
import { ILayout, ILayoutRequest, NODE_H, NODE_W, computeLayout, layoutKey } from './layout';

const SVG = 'http://www.w3.org/2000/svg';

export interface IDagInput {
  steps: IStep[];
  edges: [string, string][];
  statuses: Record<string, IStepStatus>;
  running: boolean;
}

export interface IDagActions {
  select(step: IStep): void;
  runFrom(step: IStep): void;
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {}
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  return node;
}

/** What the drawing depends on; the panel redraws only when this changes. */
export function dagKey(input: IDagInput): string {
  return JSON.stringify([
    input.steps.map(s => [s.name, s.kind, s.fresh, s.reason, s.cell, s.foreach]),
    input.edges,
    Object.entries(input.statuses).map(([k, s]) => [k, s.status, s.done, s.tasks, s.duration]),
    input.running
  ]);
}

/**
 * The layout of the input's graph if it is known; if not, null, and it is computed in a
 * worker (the newest graph asked for wins) and `ready` is called once it is known.
 */
export function layoutFor(input: IDagInput, ready: () => void): ILayout | null {
  const request: ILayoutRequest = { nodes: input.steps.map(s => s.name), edges: input.edges };
  const key = layoutKey(request);
  const known = layouts.get(key);
  if (known) {
    return known;
  }
  layouts.want(key, request, ready);
  return null;
}

export function drawDag(input: IDagInput, layout: ILayout, actions: IDagActions): SVGSVGElement {
  current = actions;
  const { width, height } = layout;
  const root = svg('svg', {
    class: 'nbflow-dag',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    // Fit the sidebar's width, but never shrink the text below 70 %: scroll instead.
    style: `width: 100%; max-width: ${width}px; min-width: ${Math.round(width * 0.7)}px; height: auto`
  });
  const defs = svg('defs');
  const marker = svg('marker', {
    id: 'nbflow-arrow',
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse'
  });
  marker.append(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'nbflow-arrowhead' }));
  defs.append(marker);
  root.append(defs);

  for (const e of layout.edges) {
    const points = e.points;
    if (points.length < 2) {
      continue;
    }
    const path = svg('path', {
      d: curve(points),
      class: 'nbflow-edge',
      'marker-end': 'url(#nbflow-arrow)',
      'data-nbflow-edge': `${e.v}->${e.w}`
    });
    root.append(path);
  }
  // A node drawn last time with the same step, status and place is moved over as it is:
  // an edit in a long notebook changes a few nodes, and redrawing all of them is what
  // costs (tens of ms for 200 steps).
  const drawn = new Map<string, SVGGElement>();
  for (const step of input.steps) {
    const box = layout.nodes[step.name];
    if (!box) {
      continue;
    }
    const status = input.statuses[step.name];
    const key = JSON.stringify([step, status, input.running, box.x, box.y]);
    const node = previous.get(key) ?? drawNode(step, status, box.x, box.y, input.running);
    drawn.set(key, node);
    root.append(node);
  }
  previous = drawn;
  return root;
}

/** The nodes of the last drawing, by what they show (one panel draws the DAG). */
let previous = new Map<string, SVGGElement>();
/** What a click on a node does: the latest drawing's actions (a node may be older). */
let current: IDagActions = { select: () => undefined, runFrom: () => undefined };

function drawNode(
  step: IStep,
  status: IStepStatus | undefined,
  cx: number,
  cy: number,
  running: boolean
): SVGGElement {
  const state = statusOf(status);
  const fresh = step.fresh === true;
  const x = cx - NODE_W / 2;
  const y = cy - NODE_H / 2;
  const node = svg('g', {
    class: `nbflow-node nbflow-status-${state}${fresh ? '' : ' nbflow-stale'}`,
    'data-nbflow-node': step.name,
    'data-nbflow-status': state,
    'data-nbflow-fresh': String(fresh),
    'data-nbflow-kind': step.kind,
    tabindex: 0
  });
  const title = svg('title');
  title.textContent =
    `${step.kind === 'branch' ? '%%branch' : '%%step'} ${step.name} (cell ${step.cell})\n` +
    `${statusText(status)}${status?.duration ? ` in ${duration(status.duration)}` : ''}\n` +
    freshText(step);
  node.append(title);
  if (step.kind === 'branch') {
    for (const offset of [8, 4]) {
      node.append(
        svg('rect', {
          x: x + offset,
          y: y - offset,
          width: NODE_W,
          height: NODE_H,
          rx: 7,
          class: 'nbflow-node-shadow'
        })
      );
    }
  }
  node.append(svg('rect', { x, y, width: NODE_W, height: NODE_H, rx: 7, class: 'nbflow-node-box' }));
  node.append(svg('rect', { x, y, width: 5, height: NODE_H, rx: 2, class: 'nbflow-node-stripe' }));
  if (state === 'running' && status && status.tasks > 1) {
    const share = Math.min(1, status.done / status.tasks);
    node.append(
      svg('rect', {
        x: x + 5,
        y: y + NODE_H - 4,
        width: (NODE_W - 6) * share,
        height: 3,
        class: 'nbflow-node-progress'
      })
    );
  }
  const name = svg('text', { x: x + 14, y: y + 19, class: 'nbflow-node-name' });
  name.textContent = clip(step.name, 14);
  node.append(name);
  const detail = svg('text', { x: x + 14, y: y + 36, class: 'nbflow-node-detail' });
  detail.textContent = clip(detailText(step, status), 19);
  node.append(detail);
  const dot = svg('circle', {
    cx: x + NODE_W - 14,
    cy: y + 14,
    r: 4.5,
    class: fresh ? 'nbflow-fresh-dot' : 'nbflow-stale-dot'
  });
  node.append(dot);

  const play = svg('g', {
    class: 'nbflow-node-runfrom',
    'data-nbflow-run-from': step.name,
    role: 'button'
  });
  const playTitle = svg('title');
  playTitle.textContent = `Run from here: resume the latest run from ${step.name}`;
  play.append(playTitle);
  play.append(svg('circle', { cx: x + NODE_W - 14, cy: y + 33, r: 8, class: 'nbflow-runfrom-bg' }));
  play.append(
    svg('path', {
      d: `M${x + NODE_W - 17},${y + 28.5} L${x + NODE_W - 9.5},${y + 33} L${x + NODE_W - 17},${y + 37.5} z`,
      class: 'nbflow-runfrom-icon'
    })
  );
  if (running) {
    play.classList.add('nbflow-disabled');
  }
  play.addEventListener('click', event => {
    event.stopPropagation();
    if (!running) {
      current.runFrom(step);
    }
  });
  node.append(play);
  node.addEventListener('click', () => current.select(step));
  node.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      current.select(step);
    }
  });
  return node;
}

function detailText(step: IStep, status: IStepStatus | undefined): string {
  const parts: string[] = [];
  const state = statusOf(status);
  if (state === 'running' && status && status.tasks > 1) {
    parts.push(`${status.done}/${status.tasks} tasks`);
  } else {
    parts.push(state === 'not-run' ? 'not run' : state);
    if (step.kind === 'branch' && status && status.tasks > 0) {
      parts.push(`×${status.tasks}`);
    } else if (step.kind === 'branch' && step.foreach) {
      parts.push(`∀ ${step.foreach}`);
    }
    if (status?.duration) {
      parts.push(duration(status.duration));
    }
  }
  return parts.join(' · ');
}

function clip(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

function curve(points: { x: number; y: number }[]): string {
  const [first, ...rest] = points;
  let d = `M${first.x},${first.y}`;
  if (rest.length === 1) {
    return `${d} L${rest[0].x},${rest[0].y}`;
  }
  for (let i = 0; i < rest.length - 1; i++) {
    const p = rest[i];
    const q = rest[i + 1];
    const mid = i === rest.length - 2 ? q : { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 };
    d += ` Q${p.x},${p.y} ${mid.x},${mid.y}`;
  }
  return d;
}

/**
 * Layouts by graph shape (a few recent ones: typing can go back and forth between two
 * shapes), computed one at a time in a worker; a request that waits is replaced by a
 * newer one. Where no worker can be started, the layout is computed on the page.
 */
class Layouts {
  get(key: string): ILayout | null {
    const layout = this._cache.get(key);
    if (layout) {
      this._cache.delete(key); // most recently used last
      this._cache.set(key, layout);
    }
    return layout ?? null;
  }

  want(key: string, request: ILayoutRequest, ready: () => void): void {
    this._ready = ready;
    if (this._busy === key) {
      return;
    }
    this._next = { key, request };
    this._pump();
  }

  private _pump(): void {
    if (this._busy !== null || !this._next) {
      return;
    }
    const { key, request } = this._next;
    this._next = null;
    const worker = this._worker();
    if (!worker) {
      this._done(key, computeLayout(request));
      return;
    }
    this._busy = key;
    worker.postMessage({ id: ++this._id, request });
    this._requests.set(this._id, { key, request });
  }

  private _done(key: string, layout: ILayout): void {
    this._cache.set(key, layout);
    while (this._cache.size > 4) {
      this._cache.delete(this._cache.keys().next().value as string);
    }
    this._busy = null;
    this._pump();
    this._ready?.();
  }

  private _worker(): Worker | null {
    if (this._started === undefined) {
      try {
        const worker = new Worker(new URL('./layout.worker.js', import.meta.url));
        worker.onmessage = (event: MessageEvent<{ id: number; layout?: ILayout; error?: string }>) => {
          const asked = this._requests.get(event.data.id);
          this._requests.delete(event.data.id);
          if (asked) {
            this._done(asked.key, event.data.layout ?? computeLayout(asked.request));
          }
        };
        worker.onerror = () => this._fallBack();
        this._started = worker;
      } catch {
        this._started = null;
      }
    }
    return this._started;
  }

  /** The worker could not load or broke: lay out what it was asked on the page. */
  private _fallBack(): void {
    this._started?.terminate();
    this._started = null;
    const asked = [...this._requests.values()];
    this._requests.clear();
    this._busy = null;
    for (const { key, request } of asked) {
      this._done(key, computeLayout(request));
    }
  }

  private _cache = new Map<string, ILayout>();
  private _requests = new Map<number, { key: string; request: ILayoutRequest }>();
  private _next: { key: string; request: ILayoutRequest } | null = null;
  private _busy: string | null = null;
  private _ready: (() => void) | null = null;
  private _started: Worker | null | undefined = undefined;
  private _id = 0;
}

const layouts = new Layouts();
