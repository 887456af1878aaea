/**
 * Where dagre puts the DAG's nodes and edges. It depends only on the graph's shape (the
 * step names and edges), never on statuses or freshness, so one layout serves every
 * redraw until a step or an edge comes or goes. Laying out a long notebook takes dagre
 * seconds (a 200-step chain with long skip edges: ~5 s), so the panel asks a worker for
 * it (`layout.worker.ts`) and the page keeps responding while it is computed.
 */
import dagre from '@dagrejs/dagre';

export const NODE_W = 138;
export const NODE_H = 48;

export interface ILayoutRequest {
  nodes: string[];
  edges: [string, string][];
}

export interface IPoint {
  x: number;
  y: number;
}

export interface ILayout {
  width: number;
  height: number;
  nodes: Record<string, IPoint>;
  edges: { v: string; w: string; points: IPoint[] }[];
}

/** The layout's cache key: what the layout depends on. */
export function layoutKey(request: ILayoutRequest): string {
  return JSON.stringify([request.nodes, request.edges]);
}

export function computeLayout(request: ILayoutRequest): ILayout {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'TB', nodesep: 18, ranksep: 36, marginx: 12, marginy: 14 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const name of request.nodes) {
    g.setNode(name, { width: NODE_W, height: NODE_H });
  }
  const names = new Set(request.nodes);
  for (const [parent, child] of request.edges) {
    if (names.has(parent) && names.has(child)) {
      g.setEdge(parent, child);
    }
  }
  dagre.layout(g);
  const graph = g.graph();
  const nodes: Record<string, IPoint> = {};
  for (const name of request.nodes) {
    const box = g.node(name);
    nodes[name] = { x: box.x, y: box.y };
  }
  return {
    width: Math.max(graph.width ?? 0, NODE_W + 24),
    height: Math.max(graph.height ?? 0, NODE_H + 24),
    nodes,
    edges: g.edges().map(e => ({
      v: e.v,
      w: e.w,
      points: (g.edge(e).points ?? []).map((p: IPoint) => ({ x: p.x, y: p.y }))
    }))
  };
}
