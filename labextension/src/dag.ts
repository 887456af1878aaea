/**
 * The DAG as SVG: dagre lays it out, this draws it. A node per step (a branch as a
 * stack of cards with its task count), edges as curves with arrowheads.
 */
import dagre from '@dagrejs/dagre';

import { IStep, IStepStatus } from './api';
import { duration, freshText, statusOf, statusText } from './format';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 138;
const NODE_H = 48;

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

export function drawDag(input: IDagInput, actions: IDagActions): SVGSVGElement {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 36, marginx: 12, marginy: 14 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const step of input.steps) {
    g.setNode(step.name, { width: NODE_W, height: NODE_H });
  }
  const names = new Set(input.steps.map(s => s.name));
  for (const [parent, child] of input.edges) {
    if (names.has(parent) && names.has(child)) {
      g.setEdge(parent, child);
    }
  }
  dagre.layout(g);
  const graph = g.graph();
  const width = Math.max(graph.width ?? 0, NODE_W + 24);
  const height = Math.max(graph.height ?? 0, NODE_H + 24);
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
    root.append(drawNode(step, input.statuses[step.name], box.x, box.y, input.running, actions));
  }
  return root;
}

function drawNode(
  step: IStep,
  status: IStepStatus | undefined,
  cx: number,
  cy: number,
  running: boolean,
  actions: IDagActions
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
