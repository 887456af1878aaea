/**
 * The DAG as SVG: dagre lays it out (in a worker, `layout.ts`), this draws it. A node per
 * step (a branch as a stack of cards with its task count), edges as curves with arrowheads.
 * Nodes are sized to their text; the drawing has two lines per node (FULL) when that fits
 * the panel's width, else one (COMPACT), and is never scaled below MIN_SCALE.
 */
import { IStep, IStepStatus } from './api';
import { duration, freshText, statusOf, statusText } from './format';
import { ILayout, ILayoutRequest, IPlaced, computeLayout, layoutKey } from './layout';

const SVG = 'http://www.w3.org/2000/svg';
/** Widths of the node text: the name in the code font at 12.5 px, details at 11 px. */
const NAME_CHAR = 7.6;
const DETAIL_CHAR = 6.3;
const PAD = 14; // left of the text (after the status stripe)
const RIGHT = 26; // right of the text: the freshness dot and the run-from-here button
const MAX_NAME = 24; // characters; longer names are cut with … (the tooltip has them whole)
/** Never scale the drawing below this to fit the panel: scroll instead. */
const MIN_SCALE = 0.85;

interface IStyle {
  /** Two lines (name, then status and duration) or one (name; the rest in the tooltip). */
  lines: 1 | 2;
  height: number;
  nodesep: number;
  ranksep: number;
}

const FULL: IStyle = { lines: 2, height: 48, nodesep: 16, ranksep: 34 };
const COMPACT: IStyle = { lines: 1, height: 30, nodesep: 10, ranksep: 26 };

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
 * The layout to draw the input in `available` pixels of width, if it is known: nodes as
 * wide as their text, two lines each; if that is too wide for the panel, one line each
 * (when that is narrower); if even that is too wide, the drawing is scaled down to
 * MIN_SCALE and scrolled beyond. A layout not known yet is computed in a worker (the
 * newest request wins), null is returned and `ready` is called once it is known: first
 * the full layout, then, only if it does not fit, the compact one.
 */
export function layoutFor(input: IDagInput, available: number, ready: () => void): ILayout | null {
  const known = knownOrWanted(request(input, FULL), ready);
  if (!known || !(available > 0 && known.width * MIN_SCALE > available)) {
    return known;
  }
  const small = knownOrWanted(request(input, COMPACT), ready);
  if (!small) {
    return null;
  }
  return small.width < known.width ? small : known;
}

/** The layout for `wanted` if it is known; else null, and it is asked of the worker. */
function knownOrWanted(wanted: ILayoutRequest, ready: () => void): ILayout | null {
  const key = layoutKey(wanted);
  const known = layouts.get(key);
  if (!known) {
    layouts.want(key, wanted, ready);
  }
  return known;
}

/** What the layout in a style depends on: each node's box (sized to its text), the spacing. */
function request(input: IDagInput, style: IStyle): ILayoutRequest {
  return {
    lines: style.lines,
    nodesep: style.nodesep,
    ranksep: style.ranksep,
    edges: input.edges,
    nodes: input.steps.map(step => {
      const status = input.statuses[step.name];
      const text = Math.max(nameText(step, status, style.lines).length * NAME_CHAR,
        style.lines === 2 ? detailText(step, status).length * DETAIL_CHAR : 0);
      const shadow = step.kind === 'branch' ? 8 : 0;
      return { name: step.name, width: Math.ceil(Math.max(64, PAD + text + RIGHT)) + shadow,
        height: style.height + shadow, shadow };
    })
  };
}

export function drawDag(input: IDagInput, layout: ILayout, actions: IDagActions): SVGSVGElement {
  current = actions;
  const { width, height, lines } = layout;
  const root = svg('svg', {
    class: `nbflow-dag nbflow-dag-${lines === 1 ? 'compact' : 'full'}`,
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    // Fit the sidebar's width, but never shrink the text below MIN_SCALE: scroll instead.
    style: `width: 100%; max-width: ${width}px; min-width: ${Math.ceil(width * MIN_SCALE)}px; height: auto`
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
  // A node drawn last time with the same step, status, place, size and style is moved
  // over as it is: an edit in a long notebook changes a few nodes, and redrawing all of
  // them is what costs (tens of ms for 200 steps).
  const drawn = new Map<string, SVGGElement>();
  for (const step of input.steps) {
    const box = layout.nodes[step.name];
    if (!box) {
      continue;
    }
    const status = input.statuses[step.name];
    const key = JSON.stringify([step, status, input.running, lines,
      box.x, box.y, box.width, box.height, box.shadow]);
    const node = previous.get(key) ?? drawNode(step, status, box, lines, input.running);
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

function nameText(step: IStep, status: IStepStatus | undefined, lines: 1 | 2): string {
  const name = clip(step.name, MAX_NAME);
  if (lines === 1 && step.kind === 'branch' && status && status.tasks > 0) {
    return `${name} ×${status.tasks}`; // the fan-out's task count, once known
  }
  return name;
}

function drawNode(
  step: IStep,
  status: IStepStatus | undefined,
  box: IPlaced,
  lines: 1 | 2,
  running: boolean
): SVGGElement {
  const state = statusOf(status);
  const fresh = step.fresh === true;
  // The card itself; a branch's stack of cards behind it takes the box's top right corner.
  const NODE_W = box.width - box.shadow;
  const NODE_H = box.height - box.shadow;
  const x = box.x - box.width / 2;
  const y = box.y - box.height / 2 + box.shadow;
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
  const top = lines === 2 ? y + 19 : y + NODE_H / 2 + 4.5;
  const name = svg('text', { x: x + PAD, y: top, class: 'nbflow-node-name' });
  name.textContent = nameText(step, status, lines);
  node.append(name);
  if (lines === 2) {
    const detail = svg('text', { x: x + PAD, y: y + 36, class: 'nbflow-node-detail' });
    detail.textContent = detailText(step, status);
    node.append(detail);
  }
  const dot = svg('circle', {
    cx: x + NODE_W - 14,
    cy: lines === 2 ? y + 14 : y + NODE_H / 2,
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
  // Over the freshness dot (two lines: below it), shown on hover.
  const px = x + NODE_W - 14;
  const py = lines === 2 ? y + 33 : y + NODE_H / 2;
  play.append(svg('circle', { cx: px, cy: py, r: 8, class: 'nbflow-runfrom-bg' }));
  play.append(
    svg('path', {
      d: `M${px - 3},${py - 4.5} L${px + 4.5},${py} L${px - 3},${py + 4.5} z`,
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
 * Layouts by what they depend on (graph shape, node sizes, style; a few recent ones: typing
 * can go back and forth between two shapes, and a narrow panel uses a full and a compact
 * one), computed one at a time in a worker; a request that waits is replaced by a
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
      this._next = null; // what is being computed is what is wanted now
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
    while (this._cache.size > 8) {
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
