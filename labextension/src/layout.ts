/**
 * Where dagre puts the DAG's nodes and edges. It depends on the graph's shape (the step
 * names and edges) and on what `dag.ts` asks for each node and the graph: each node's box
 * (sized to its text) and the style's spacing. Laying out a long notebook takes dagre
 * seconds (a 200-step chain with long skip edges: ~5 s), so the panel asks a worker for
 * it (`layout.worker.ts`) and the page keeps responding while it is computed.
 */
import dagre from '@dagrejs/dagre';

/** A node's box; `shadow` is the room a branch's stack of cards takes (top right). */
export interface INodeBox {
  name: string;
  width: number;
  height: number;
  shadow: number;
}

export interface ILayoutRequest {
  nodes: INodeBox[];
  edges: [string, string][];
  nodesep: number;
  ranksep: number;
  /** The drawing's style the boxes were sized for (two lines or one). */
  lines: 1 | 2;
}

export interface IPoint {
  x: number;
  y: number;
}

export interface IPlaced extends IPoint {
  width: number;
  height: number;
  shadow: number;
}

export interface ILayout {
  width: number;
  height: number;
  lines: 1 | 2;
  nodes: Record<string, IPlaced>;
  /** Each edge as an SVG path (`d`; empty for an edge dagre gave no points). */
  edges: { v: string; w: string; d: string }[];
  /** A stand-in drawn while dagre's layout is computed (`draftLayout`). */
  draft?: boolean;
}

/** The layout's cache key: everything the layout depends on. */
export function layoutKey(request: ILayoutRequest): string {
  return JSON.stringify([
    request.lines,
    request.nodesep,
    request.ranksep,
    request.nodes.map(n => [n.name, n.width, n.height, n.shadow]),
    request.edges
  ]);
}

export function computeLayout(request: ILayoutRequest): ILayout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: request.nodesep, ranksep: request.ranksep,
    marginx: 6, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of request.nodes) {
    g.setNode(node.name, { width: node.width, height: node.height });
  }
  const names = new Set(request.nodes.map(n => n.name));
  for (const [parent, child] of request.edges) {
    if (names.has(parent) && names.has(child)) {
      g.setEdge(parent, child);
    }
  }
  dagre.layout(g);
  const graph = g.graph();
  const nodes: Record<string, IPlaced> = {};
  for (const node of request.nodes) {
    const box = g.node(node.name);
    nodes[node.name] = { x: box.x, y: box.y, width: node.width, height: node.height,
      shadow: node.shadow };
  }
  return {
    width: Math.max(graph.width ?? 0, 90),
    height: Math.max(graph.height ?? 0, 60),
    lines: request.lines,
    nodes,
    edges: g.edges().map(e => ({
      v: e.v,
      w: e.w,
      d: curve(g.edge(e).points ?? [])
    }))
  };
}

/**
 * An edge through its points as a path of quadratic curves. Made where the layout is (the
 * worker): a long edge of a long notebook has a hundred points, and the page receives one
 * string instead of them.
 */
function curve(points: IPoint[]): string {
  if (points.length < 2) {
    return '';
  }
  const [first, ...rest] = points;
  const at = (p: IPoint) => `${Math.round(p.x * 10) / 10},${Math.round(p.y * 10) / 10}`;
  let d = `M${at(first)}`;
  if (rest.length === 1) {
    return `${d} L${at(rest[0])}`;
  }
  for (let i = 0; i < rest.length - 1; i++) {
    const p = rest[i];
    const q = rest[i + 1];
    const mid = i === rest.length - 2 ? q : { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 };
    d += ` Q${at(p)} ${at(mid)}`;
  }
  return d;
}

/**
 * A draft of a new layout made from the one drawn last, for the time the worker needs for
 * a long notebook's (seconds for 200 steps): the nodes drawn before stay where they are,
 * a new node goes below its lowest parent, right of everything placed, and each edge that
 * cannot keep its path is a plain curve from its parent to its child. Made in well under a
 * millisecond; null when the two graphs share too little for the old places to help (the
 * panel then says the graph is being laid out).
 */
export function draftLayout(last: ILayout, request: ILayoutRequest): ILayout | null {
  const kept = request.nodes.filter(n => n.name in last.nodes).length;
  if (kept === 0 || kept * 2 < request.nodes.length) {
    return null;
  }
  const parents = new Map<string, string[]>();
  for (const [parent, child] of request.edges) {
    parents.set(child, [...(parents.get(child) ?? []), parent]);
  }
  const nodes: Record<string, IPlaced> = {};
  let right = 0;
  for (const node of request.nodes) {
    const was = last.nodes[node.name];
    if (was) {
      nodes[node.name] = { ...was, width: node.width, height: node.height, shadow: node.shadow };
      right = Math.max(right, was.x + node.width / 2);
    }
  }
  for (const node of request.nodes) {
    if (nodes[node.name]) {
      continue;
    }
    const above = (parents.get(node.name) ?? []).map(p => nodes[p]).filter(Boolean);
    const top = above.length ? Math.max(...above.map(p => p.y + p.height / 2)) + request.ranksep : 12;
    const x = right + request.nodesep + node.width / 2;
    right = x + node.width / 2;
    nodes[node.name] = { x, y: top + node.height / 2, width: node.width, height: node.height,
      shadow: node.shadow };
  }
  const paths = new Map(last.edges.map(e => [`${e.v}->${e.w}`, e.d]));
  const same = (name: string) => {
    const was = last.nodes[name];
    const now = nodes[name];
    return was && was.x === now.x && was.y === now.y && was.width === now.width &&
      was.height === now.height;
  };
  const edges = request.edges
    .filter(([v, w]) => nodes[v] && nodes[w])
    .map(([v, w]) => {
      const kept = same(v) && same(w) ? paths.get(`${v}->${w}`) : undefined;
      return { v, w, d: kept ?? plainCurve(nodes[v], nodes[w]) };
    });
  const placed = Object.values(nodes);
  return {
    width: Math.max(90, ...placed.map(p => p.x + p.width / 2 + 6)),
    height: Math.max(60, ...placed.map(p => p.y + p.height / 2 + 12)),
    lines: request.lines,
    nodes,
    edges,
    draft: true
  };
}

/** An edge from the bottom of its parent to the top of its child. */
function plainCurve(from: IPlaced, to: IPlaced): string {
  const r = (n: number) => Math.round(n * 10) / 10;
  const y1 = from.y + from.height / 2;
  const y2 = to.y - to.height / 2;
  const mid = (y1 + y2) / 2;
  return `M${r(from.x)},${r(y1)} C${r(from.x)},${r(mid)} ${r(to.x)},${r(mid)} ${r(to.x)},${r(y2)}`;
}
