/**
 * The DAG as SVG: dagre lays it out (in a worker, `layout.ts`), this draws it. A node per
 * step (a branch as a stack of cards with its task count), edges as curves with arrowheads.
 * Nodes are sized to their text (the status line as its widest usual text, so statuses
 * changing keep the layout); the drawing has two lines per node (FULL) when that fits the
 * panel's width, else one (COMPACT), and is never scaled below MIN_SCALE. The SVG is kept
 * and updated in place (`DagDrawing`).
 */
import { IStep, IStepStatus } from './api';
import {
  IShown, duration, freshText, runFromText, sameShown, statusOf, statusText
} from './format';
import {
  ILayout, ILayoutRequest, IPlaced, computeLayout, draftLayout, layoutKey
} from './layout';

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
  /** The run "run from here" resumes: the one picked in the history, else the latest. */
  resumes: string | null;
  /** Steps whose freshness is being checked again (`FlowModel.checking`), as a key. */
  checking: Set<string>;
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

/**
 * The layout to draw the input in `available` pixels of width, if it is known: nodes as
 * wide as their text, two lines each; if that is too wide for the panel, one line each
 * (when that is narrower); if even that is too wide, the drawing is scaled down to
 * MIN_SCALE and scrolled beyond. A layout not known yet is computed in a worker (the
 * newest request wins) and `ready` is called once it is known: first the full layout,
 * then, only if it does not fit, the compact one. Until then null is returned, or, once
 * the worker has taken DRAFT_AFTER without an answer, a draft made from the layout
 * returned last (`draftLayout`), so the picture follows an edit within a second even
 * where dagre takes seconds.
 */
export function layoutFor(input: IDagInput, available: number, ready: () => void): ILayout | null {
  const dagre = dagreLayoutFor(input, available, ready);
  if (dagre) {
    waiting = draft = null; // a shape asked again later waits DRAFT_AFTER again
  }
  const layout = dagre ?? draftFor(input, ready);
  if (layout) {
    returned = layout;
  }
  return layout;
}

function dagreLayoutFor(input: IDagInput, available: number, ready: () => void): ILayout | null {
  const known = knownOrWanted(input, FULL, ready);
  if (!known) {
    return null;
  }
  if (!(available > 0 && known.width * MIN_SCALE > available)) {
    layouts.idle();
    return known;
  }
  const small = knownOrWanted(input, COMPACT, ready);
  if (!small) {
    return null;
  }
  layouts.idle();
  return small.width < known.width ? small : known;
}

/** How long the worker may take before a draft is drawn (ms). */
const DRAFT_AFTER = 150;

/**
 * A draft of the input's layout in the style of the layout returned last, once the
 * input has waited DRAFT_AFTER for dagre's; null before (`ready` is called then) or when
 * the last layout does not help (another notebook's).
 */
function draftFor(input: IDagInput, ready: () => void): ILayout | null {
  if (!returned) {
    return null;
  }
  const { request, key } = requestOf(input, returned.lines === 1 ? COMPACT : FULL);
  if (draft?.key === key) {
    return draft.layout;
  }
  if (waiting?.key !== key) {
    waiting = { key, since: performance.now() };
    setTimeout(ready, DRAFT_AFTER);
    return null;
  }
  if (performance.now() - waiting.since < DRAFT_AFTER) {
    return null;
  }
  const made = draftLayout(returned, request);
  draft = made && { key, layout: made };
  return made;
}

let returned: ILayout | null = null;
let waiting: { key: string; since: number } | null = null;
let draft: { key: string; layout: ILayout } | null = null;

/** The layout of the input in a style if it is known; else null, and it is asked of the worker. */
function knownOrWanted(input: IDagInput, style: IStyle, ready: () => void): ILayout | null {
  const wanted = requestOf(input, style);
  const known = layouts.get(wanted.key);
  if (!known) {
    layouts.want(wanted.key, wanted.request, ready);
  }
  return known;
}

/**
 * The layout request and its key for the input in a style, made once for the same steps,
 * edges and statuses (the panel asks on every redraw; for 200 steps the request and its
 * key take a millisecond or two).
 */
function requestOf(input: IDagInput, style: IStyle): { request: ILayoutRequest; key: string } {
  const last = asked.get(style);
  if (last && last.steps === input.steps && last.edges === input.edges &&
      last.statuses === input.statuses) {
    return last;
  }
  const made = request(input, style);
  const entry = { steps: input.steps, edges: input.edges, statuses: input.statuses,
    request: made, key: layoutKey(made) };
  asked.set(style, entry);
  return entry;
}

const asked = new Map<IStyle, { steps: IStep[]; edges: [string, string][];
  statuses: Record<string, IStepStatus>; request: ILayoutRequest; key: string }>();

/**
 * What the layout in a style depends on: each node's box, the spacing. A box is as wide as
 * the step's name, or as its status line would be with the widest usual status
 * (RESERVED), so a status changing during a run (not run, running, succeeded in 2.1 s)
 * keeps the layout; only a longer text (a duration of minutes) widens it.
 */
function request(input: IDagInput, style: IStyle): ILayoutRequest {
  return {
    lines: style.lines,
    nodesep: style.nodesep,
    ranksep: style.ranksep,
    edges: input.edges,
    nodes: input.steps.map(step => {
      const status = input.statuses[step.name];
      const detail = Math.max(detailText(step, status).length, RESERVED[step.kind].length);
      const text = Math.max(nameText(step, status, style.lines).length * NAME_CHAR,
        style.lines === 2 ? detail * DETAIL_CHAR : 0);
      const shadow = step.kind === 'branch' ? 8 : 0;
      return { name: step.name, width: Math.ceil(Math.max(64, PAD + text + RIGHT)) + shadow,
        height: style.height + shadow, shadow };
    })
  };
}

/** The widest status line a node usually shows, by kind (see `detailText`). */
const RESERVED = { step: 'succeeded · 9.9 s', branch: 'succeeded · ×99 · 9.9 s' };

/**
 * The DAG's SVG, kept from one drawing to the next: nodes are placed by a transform and
 * updated in place, writing only the texts and attributes that changed, and edges are
 * redrawn only for a new layout. An edit near the top of a long notebook turns 200 nodes
 * stale at once; rebuilding them took tens of milliseconds a time, updating them does not.
 */
export class DagDrawing {
  constructor(private _actions: IDagActions) {
    this.node.append(this._defs(), this._edges, this._nodes);
  }

  readonly node = svg('svg');

  /**
   * Bring the drawing to the input in the layout until `deadline` (`performance.now()`
   * time; see `frames.ts`): the edges, then the nodes. True when it is done; else call
   * again (with the same or a newer input) and it goes on where it stopped.
   */
  update(input: IDagInput, layout: ILayout, actions: IDagActions, deadline = Infinity): boolean {
    this._actions = actions;
    let pass = this._pass;
    if (!pass || pass.layout !== layout || pass.steps !== input.steps ||
        pass.statuses !== input.statuses || pass.running !== input.running ||
        pass.resumes !== input.resumes || pass.checking !== setKey(input.checking)) {
      if (layout !== this._layout) {
        this._layout = layout;
        this._size(layout);
      }
      pass = { layout, steps: input.steps, statuses: input.statuses, running: input.running,
        resumes: input.resumes, checking: setKey(input.checking), edge: 0, node: 0, edges: new Set(), nodes: new Set(), done: false };
      this._pass = pass;
    }
    if (pass.done) {
      return true;
    }
    const edges = layout.edges;
    while (pass.edge < edges.length) {
      this._edge(edges[pass.edge++], pass.edges);
      if (pass.edge % 16 === 0 && performance.now() >= deadline) {
        return false;
      }
    }
    const steps = input.steps;
    while (pass.node < steps.length) {
      const step = steps[pass.node++];
      const box = layout.nodes[step.name];
      if (box) {
        pass.nodes.add(step.name);
        let view = this._views.get(step.name);
        if (!view) {
          view = this._newView(step.name);
          this._views.set(step.name, view);
          this._nodes.append(view.g);
        }
        updateNode(view, step, input.statuses[step.name], box, layout.lines, input.running,
          input.resumes, input.checking.has(step.name));
      }
      if (pass.node % 8 === 0 && performance.now() >= deadline) {
        return false;
      }
    }
    drop(this._views, pass.nodes, view => view.g.remove());
    drop(this._paths, pass.edges, path => path.remove());
    pass.done = true;
    return true;
  }

  /** The drawing's size for a new layout. */
  private _size(layout: ILayout): void {
    const { width, height, lines } = layout;
    const root = this.node;
    root.setAttribute('class', `nbflow-dag nbflow-dag-${lines === 1 ? 'compact' : 'full'}` +
      (layout.draft ? ' nbflow-dag-draft' : ''));
    root.setAttribute('data-nbflow-layout', layout.draft ? 'draft' : 'dagre');
    root.setAttribute('width', String(width));
    root.setAttribute('height', String(height));
    root.setAttribute('viewBox', `0 0 ${width} ${height}`);
    // Fit the sidebar's width, but never shrink the text below MIN_SCALE: scroll instead.
    root.setAttribute('style', `width: 100%; max-width: ${width}px; ` +
      `min-width: ${Math.ceil(width * MIN_SCALE)}px; height: auto`);
  }

  /** An edge of the layout: its path, kept from drawing to drawing, moved if it has to. */
  private _edge(e: ILayout['edges'][number], seen: Set<string>): void {
    const d = e.d;
    if (!d) {
      return;
    }
    const key = `${e.v}->${e.w}`;
    seen.add(key);
    const path = this._paths.get(key);
    if (!path) {
      const made = svg('path', { d, class: 'nbflow-edge', 'marker-end': 'url(#nbflow-arrow)',
        'data-nbflow-edge': key });
      this._paths.set(key, made);
      this._edges.append(made);
    } else if (path.getAttribute('d') !== d) {
      path.setAttribute('d', d);
    }
  }

  private _defs(): SVGDefsElement {
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
    return defs;
  }

  private _newView(name: string): INodeView {
    const g = svg('g', { 'data-nbflow-node': name, tabindex: 0 });
    const view: INodeView = { g, shape: '', place: '', shown: null, parts: null,
      written: new Map(), runFrom: () => view.shown && this._actions.runFrom(view.shown.step) };
    const select = () => view.shown && this._actions.select(view.shown.step);
    g.addEventListener('click', select);
    g.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        select();
      }
    });
    return view;
  }

  private _layout: ILayout | null = null;
  private _edges = svg('g', { class: 'nbflow-edges' });
  private _nodes = svg('g', { class: 'nbflow-nodes' });
  private _views = new Map<string, INodeView>();
  private _paths = new Map<string, SVGPathElement>();
  private _pass: IPass | null = null;
}

/** A drawing under way: for which input and layout, how far it got, what it has drawn. */
interface IPass {
  layout: ILayout;
  steps: IStep[];
  statuses: Record<string, IStepStatus>;
  running: boolean;
  resumes: string | null;
  checking: string;
  edge: number;
  node: number;
  edges: Set<string>;
  nodes: Set<string>;
  done: boolean;
}

function setKey(names: Set<string>): string {
  return [...names].join('\n');
}

/** Remove what a finished pass did not draw. */
function drop<T>(drawn: Map<string, T>, seen: Set<string>, remove: (item: T) => void): void {
  for (const [key, item] of drawn) {
    if (!seen.has(key)) {
      remove(item);
      drawn.delete(key);
    }
  }
}

/** One node of the drawing and what it shows now. */
interface INodeView {
  g: SVGGElement;
  /** The card's geometry (kind, lines, size): its parts are rebuilt when this changes. */
  shape: string;
  /** Where the card sits (its transform). */
  place: string;
  shown: IShown | null;
  parts: INodeParts | null;
  /** The texts and attributes written last, by what they are. */
  written: Map<string, string>;
  runFrom(): void;
}

interface INodeParts {
  title: SVGTitleElement;
  name: SVGTextElement;
  detail: SVGTextElement | null;
  dot: SVGCircleElement;
  progress: SVGRectElement;
  play: SVGGElement;
  playTitle: SVGTitleElement;
  width: number;
}

function updateNode(view: INodeView, step: IStep, status: IStepStatus | undefined,
  box: IPlaced, lines: 1 | 2, running: boolean, resumes: string | null,
  checking: boolean): void {
  const shape = `${step.kind} ${lines} ${box.width} ${box.height} ${box.shadow}`;
  if (shape !== view.shape) {
    view.shape = shape;
    view.parts = buildNode(view, step.kind, box, lines);
    view.written.clear();
    view.shown = null; // everything below is written again
  }
  const place = `translate(${box.x - box.width / 2},${box.y - box.height / 2})`;
  if (place !== view.place) {
    view.place = place;
    view.g.setAttribute('transform', place);
  }
  const shown = { step, status: status ?? null, running, resumes, checking };
  if (sameShown(view.shown, shown)) {
    return;
  }
  view.shown = shown;
  const parts = view.parts!;
  const state = statusOf(status);
  const fresh = step.fresh === true;
  const write = (key: string, value: string, apply: () => void) => {
    if (view.written.get(key) !== value) {
      view.written.set(key, value);
      apply();
    }
  };
  const attr = (key: string, node: Element, name: string, value: string) =>
    write(key, value, () => node.setAttribute(name, value));
  const text = (key: string, node: Element, value: string) =>
    write(key, value, () => { node.textContent = value; });
  attr('class', view.g, 'class', `nbflow-node nbflow-status-${state}${fresh ? '' : ' nbflow-stale'}`);
  attr('status', view.g, 'data-nbflow-status', state);
  attr('fresh', view.g, 'data-nbflow-fresh', String(fresh));
  attr('kind', view.g, 'data-nbflow-kind', step.kind);
  text('title', parts.title,
    `${step.kind === 'branch' ? '%%branch' : '%%step'} ${step.name} (cell ${step.cell})\n` +
    `${statusText(status)}${status?.duration ? ` in ${duration(status.duration)}` : ''}\n` +
    freshText(step, checking));
  text('name', parts.name, nameText(step, status, lines));
  if (parts.detail) {
    text('detail', parts.detail, detailText(step, status));
  }
  attr('dot', parts.dot, 'class',
    checking ? 'nbflow-checking-dot' : fresh ? 'nbflow-fresh-dot' : 'nbflow-stale-dot');
  const share = state === 'running' && status && status.tasks > 1
    ? Math.min(1, status.done / status.tasks) : null;
  attr('progress', parts.progress, 'width', String(share === null ? 0 : (parts.width - 6) * share));
  attr('progress-shown', parts.progress, 'display', share === null ? 'none' : 'inline');
  attr('play', parts.play, 'class', `nbflow-node-runfrom${running ? ' nbflow-disabled' : ''}`);
  attr('play-step', parts.play, 'data-nbflow-run-from', step.name);
  text('play-title', parts.playTitle, runFromText(step, resumes));
}

/** The card's parts, in the card's own coordinates (the box's top left corner is 0,0). */
function buildNode(view: INodeView, kind: IStep['kind'], box: IPlaced, lines: 1 | 2): INodeParts {
  // The card itself; a branch's stack of cards behind it takes the box's top right corner.
  const NODE_W = box.width - box.shadow;
  const NODE_H = box.height - box.shadow;
  const x = 0;
  const y = box.shadow;
  const title = svg('title');
  const children: SVGElement[] = [title];
  if (kind === 'branch') {
    for (const offset of [8, 4]) {
      children.push(svg('rect', { x: x + offset, y: y - offset, width: NODE_W, height: NODE_H,
        rx: 7, class: 'nbflow-node-shadow' }));
    }
  }
  children.push(svg('rect', { x, y, width: NODE_W, height: NODE_H, rx: 7, class: 'nbflow-node-box' }));
  children.push(svg('rect', { x, y, width: 5, height: NODE_H, rx: 2, class: 'nbflow-node-stripe' }));
  const progress = svg('rect', { x: x + 5, y: y + NODE_H - 4, width: 0, height: 3,
    class: 'nbflow-node-progress', display: 'none' });
  children.push(progress);
  const top = lines === 2 ? y + 19 : y + NODE_H / 2 + 4.5;
  const name = svg('text', { x: x + PAD, y: top, class: 'nbflow-node-name' });
  children.push(name);
  let detail: SVGTextElement | null = null;
  if (lines === 2) {
    detail = svg('text', { x: x + PAD, y: y + 36, class: 'nbflow-node-detail' });
    children.push(detail);
  }
  const dot = svg('circle', { cx: x + NODE_W - 14, cy: lines === 2 ? y + 14 : y + NODE_H / 2,
    r: 4.5 });
  children.push(dot);
  const play = svg('g', { class: 'nbflow-node-runfrom', role: 'button' });
  const playTitle = svg('title');
  play.append(playTitle);
  // Over the freshness dot (two lines: below it), shown on hover.
  const px = x + NODE_W - 14;
  const py = lines === 2 ? y + 33 : y + NODE_H / 2;
  play.append(svg('circle', { cx: px, cy: py, r: 8, class: 'nbflow-runfrom-bg' }));
  play.append(svg('path', {
    d: `M${px - 3},${py - 4.5} L${px + 4.5},${py} L${px - 3},${py + 4.5} z`,
    class: 'nbflow-runfrom-icon'
  }));
  play.addEventListener('click', event => {
    event.stopPropagation();
    if (!view.shown?.running) {
      view.runFrom();
    }
  });
  children.push(play);
  view.g.replaceChildren(...children);
  return { title, name, detail, dot, progress, play, playTitle, width: NODE_W };
}

function nameText(step: IStep, status: IStepStatus | undefined, lines: 1 | 2): string {
  const name = clip(step.name, MAX_NAME);
  if (lines === 1 && step.kind === 'branch' && status && status.tasks > 0) {
    return `${name} ×${status.tasks}`; // the fan-out's task count, once known
  }
  return name;
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

/**
 * Layouts by what they depend on (graph shape, node sizes, style; a few recent ones: typing
 * can go back and forth between two shapes, and a narrow panel uses a full and a compact
 * one), computed one at a time in a worker; a newer request replaces the one waiting,
 * and stops the one being computed (the worker is ended: dagre cannot be interrupted), as
 * does a drawing whose layout is known. Where no worker can be started, the layout is
 * computed on the page.
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
    if (this._busy !== null) {
      this._stop(); // what it computes is no longer wanted (typing went on)
    }
    this._pump();
  }

  /**
   * What is drawn is known: stop computing a layout no one waits for any more (one of a
   * 200-step notebook takes seconds of a core, which typing on a 2-core machine feels).
   */
  idle(): void {
    this._next = null;
    if (this._busy !== null) {
      this._stop();
    }
  }

  /** End the worker and what it computes; the next request starts a new one. */
  private _stop(): void {
    if (this._started) {
      this._started.terminate();
      this._started = undefined;
    }
    this._requests.clear();
    this._busy = null;
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

  /**
   * The worker to compute with: the one started, else the spare (made while the page was
   * idle: starting a worker takes the page up to several milliseconds, which a keystroke
   * typed then would wait for), else a new one; null where none can be started.
   */
  private _worker(): Worker | null {
    if (this._started === undefined) {
      const worker = this._spare ?? this._newWorker();
      this._spare = undefined;
      this._started = worker;
      if (worker) {
        this._spareLater();
      }
    }
    return this._started;
  }

  private _newWorker(): Worker | null {
    try {
      const worker = new Worker(new URL('./layout.worker.js', import.meta.url));
      worker.onmessage = (event: MessageEvent<{ id: number; layout?: string; error?: string }>) => {
        if (worker !== this._started) {
          return; // a worker ended meanwhile (it cannot post after terminate, but be sure)
        }
        const asked = this._requests.get(event.data.id);
        this._requests.delete(event.data.id);
        if (asked) {
          const layout = event.data.layout;
          this._done(asked.key, layout ? JSON.parse(layout) as ILayout : computeLayout(asked.request));
        }
      };
      worker.onerror = () => {
        if (worker === this._started) {
          this._fallBack();
        } else if (worker === this._spare) {
          this._spare = null; // it could not load: no more spares; the next request starts
          // its own worker, and lays out on the page if that one breaks too (`_fallBack`)
        }
      };
      return worker;
    } catch {
      return null;
    }
  }

  /** Make the next spare when the page is idle (typing ends a busy worker, `want`). */
  private _spareLater(): void {
    if (this._spare !== undefined || this._sparing) {
      return;
    }
    this._sparing = true;
    const make = () => {
      this._sparing = false;
      if (this._spare === undefined) {
        this._spare = this._newWorker();
      }
    };
    if ('requestIdleCallback' in window) {
      window.requestIdleCallback(make, { timeout: 5000 });
    } else {
      setTimeout(make, 500);
    }
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
  /** The worker computing; undefined: none yet (make or take one); null: none can run. */
  private _started: Worker | null | undefined = undefined;
  private _spare: Worker | null | undefined = undefined;
  private _sparing = false;
  private _id = 0;
}

const layouts = new Layouts();
