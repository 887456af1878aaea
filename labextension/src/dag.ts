/**
 * The DAG as SVG: dagre lays it out, this draws it. A node per step (a branch as a
 * stack of cards with its task count), edges as curves with arrowheads.
 */
import dagre from '@dagrejs/dagre';

import { IStep, IStepStatus } from './api';
import { duration, freshText, statusOf, statusText } from './format';

const SVG = 'http://www.w3.org/2000/svg';
/** Widths of the node text: the name in the code font at 12.5 px, details at 11 px. */
const NAME_CHAR = 7.6;
const DETAIL_CHAR = 6.3;
const PAD = 14; // left of the text (after the status stripe)
const RIGHT = 26; // right of the text: the freshness dot and the run-from-here button
const MAX_NAME = 24; // characters; longer names are cut with … (the tooltip has them whole)
/** Never scale the drawing below this to fit the panel: scroll instead. */
const MIN_SCALE = 0.85;

interface ILayout {
  /** Two lines (name, then status and duration) or one (name; the rest in the tooltip). */
  lines: 1 | 2;
  height: number;
  nodesep: number;
}

const FULL: ILayout = { lines: 2, height: 48, nodesep: 16 };
const COMPACT: ILayout = { lines: 1, height: 30, nodesep: 10 };

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
 * Lay the DAG out to fit `available` pixels of width: nodes as wide as their text, two
 * lines each; if that is too wide for the panel, one line each; if even that is too
 * wide, scaled down to MIN_SCALE and scrolled beyond.
 */
export function drawDag(input: IDagInput, actions: IDagActions, available = 0): SVGSVGElement {
  let chosen = layout(input, FULL);
  if (available > 0 && chosen.width * MIN_SCALE > available) {
    const compact = layout(input, COMPACT);
    if (compact.width < chosen.width) {
      chosen = compact;
    }
  }
  const { g, width, height, style } = chosen;
  const root = svg('svg', {
    class: `nbflow-dag nbflow-dag-${style.lines === 1 ? 'compact' : 'full'}`,
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

  for (const e of g.edges()) {
    const points = g.edge(e).points ?? [];
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
  for (const step of input.steps) {
    const box = g.node(step.name);
    root.append(drawNode(step, input.statuses[step.name], box, style, input.running, actions));
  }
  return root;
}

function layout(input: IDagInput, style: ILayout) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: style.nodesep, ranksep: style.lines === 2 ? 34 : 26,
    marginx: 6, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const step of input.steps) {
    const status = input.statuses[step.name];
    const text = Math.max(nameText(step, status, style).length * NAME_CHAR,
      style.lines === 2 ? detailText(step, status).length * DETAIL_CHAR : 0);
    const shadow = step.kind === 'branch' ? 8 : 0;
    g.setNode(step.name, { width: Math.ceil(Math.max(64, PAD + text + RIGHT)) + shadow,
      height: style.height + shadow, shadow });
  }
  const names = new Set(input.steps.map(s => s.name));
  for (const [parent, child] of input.edges) {
    if (names.has(parent) && names.has(child)) {
      g.setEdge(parent, child);
    }
  }
  dagre.layout(g);
  const graph = g.graph();
  return { g, style, width: Math.max(graph.width ?? 0, 90), height: Math.max(graph.height ?? 0, 60) };
}

function nameText(step: IStep, status: IStepStatus | undefined, style: ILayout): string {
  const name = clip(step.name, MAX_NAME);
  if (style.lines === 1 && step.kind === 'branch' && status && status.tasks > 0) {
    return `${name} ×${status.tasks}`; // the fan-out's task count, once known
  }
  return name;
}

function drawNode(
  step: IStep,
  status: IStepStatus | undefined,
  box: { x: number; y: number; width: number; height: number; shadow: number },
  style: ILayout,
  running: boolean,
  actions: IDagActions
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
  const top = style.lines === 2 ? y + 19 : y + NODE_H / 2 + 4.5;
  const name = svg('text', { x: x + PAD, y: top, class: 'nbflow-node-name' });
  name.textContent = nameText(step, status, style);
  node.append(name);
  if (style.lines === 2) {
    const detail = svg('text', { x: x + PAD, y: y + 36, class: 'nbflow-node-detail' });
    detail.textContent = detailText(step, status);
    node.append(detail);
  }
  const dot = svg('circle', {
    cx: x + NODE_W - 14,
    cy: style.lines === 2 ? y + 14 : y + NODE_H / 2,
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
  const py = style.lines === 2 ? y + 33 : y + NODE_H / 2;
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
      actions.runFrom(step);
    }
  });
  node.append(play);
  node.addEventListener('click', () => actions.select(step));
  node.addEventListener('keydown', event => {
    if (event.key === 'Enter') {
      actions.select(step);
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
