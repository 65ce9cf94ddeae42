// A workflow's state graph as SVG, laid out by dagre (layered, top to bottom); an
// execution's run colours each state and the transitions it took.
import { Graph, layout } from "@dagrejs/dagre";
import { END, START, graphOf } from "./workflow-graph.js";

const NODE_H = 42;
const widthOf = (node) => Math.max(node.type === "start" || node.type === "end" ? 64 : 120, 8 * Math.max(node.name.length, (node.type || "").length) + 28);

function place(graph) {
  const g = new Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 28, ranksep: 38, edgesep: 12, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const c of graph.clusters) g.setNode(c.id, { label: c.label, paddingTop: 26 });
  for (const c of graph.clusters) if (c.parent) g.setParent(c.id, c.parent);
  for (const n of graph.nodes) {
    g.setNode(n.id, { width: widthOf(n), height: n.type === "start" || n.type === "end" ? 28 : NODE_H });
    if (n.parent) g.setParent(n.id, n.parent);
  }
  graph.edges.forEach((e, i) => g.setEdge(e.from, e.to, { minlen: 1 }, `e${i}`));
  layout(g);
  return g;
}

const path = (points) => points.map((p, i) => `${i ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(" ");

/** `run`: from runOf(history, execution), or null to show the definition alone. */
export function WorkflowGraph({ definition, run, label = "workflow graph" }) {
  let graph, g;
  try {
    graph = graphOf(definition);
    g = place(graph);
  } catch (e) {
    return <p class="notice error" role="alert">Cannot draw this definition: {String(e.message || e)}</p>;
  }
  const { width, height } = g.graph();
  const name = (id) => graph.nodes.find((n) => n.id === id).name;
  const runOfNode = (n) => {
    if (!run) return undefined;
    if (n.id === START) return Object.keys(run.states).length ? "succeeded" : undefined;
    if (n.id === END) return run.ended;
    return run.states[n.name];
  };
  return (
    <figure class="wf-graph" aria-label={label}>
      <svg viewBox={`0 0 ${Math.ceil(width)} ${Math.ceil(height)}`} width={Math.ceil(width)} height={Math.ceil(height)} role="img"
        aria-label={`${graph.nodes.length - 2} states`}>
        <defs>
          <marker id="wf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" class="wf-arrowhead" />
          </marker>
        </defs>
        {graph.clusters.map((c) => {
          const box = g.node(c.id);
          return (
            <g class="wf-cluster" data-cluster={c.label}>
              <rect x={box.x - box.width / 2} y={box.y - box.height / 2} width={box.width} height={box.height} rx="8" />
              <text x={box.x - box.width / 2 + 8} y={box.y - box.height / 2 + 16}>{c.label}</text>
            </g>
          );
        })}
        {graph.edges.map((e, i) => {
          const points = g.edge({ v: e.from, w: e.to, name: `e${i}` }).points;
          // Into or out of a branch, from the start: taken when both ends ran (events name
          // no branch's parent); to the end: when the execution ended on that state.
          const ran = (id) => runOfNode(graph.nodes.find((n) => n.id === id));
          const took = run && (run.taken.has(`${name(e.from)}→${name(e.to)}`) ||
            ((e.kind === "fork" || e.kind === "join" || e.from === START) && ran(e.from) && ran(e.to)) ||
            (e.to === END && run.ended && run.states[name(e.from)] === run.ended));
          const mid = points[Math.floor(points.length / 2)];
          return (
            <g class={`wf-edge ${e.kind}${took ? " taken" : ""}`} data-edge={`${name(e.from)}→${name(e.to)}`} data-taken={took ? "yes" : "no"}>
              <path d={path(points)} marker-end="url(#wf-arrow)" />
              {e.label && <text x={mid.x + 4} y={mid.y - 3}>{e.label}</text>}
            </g>
          );
        })}
        {graph.nodes.map((n) => {
          const box = g.node(n.id);
          const state = runOfNode(n);
          const marker = n.type === "start" || n.type === "end";
          return (
            <g class={`wf-node ${marker ? "marker" : ""} ${state ? `run-${state}` : ""}`} data-state={n.name} data-type={n.type}
              data-run={state || "none"} transform={`translate(${(box.x - box.width / 2).toFixed(1)},${(box.y - box.height / 2).toFixed(1)})`}>
              <title>{n.resource ? `${n.name} (${n.type} → ${n.resource})` : `${n.name} (${n.type})`}{state ? `: ${state}` : ""}</title>
              <rect width={box.width} height={box.height} rx={marker ? box.height / 2 : 6} />
              <text x={box.width / 2} y={marker ? 18 : 17} text-anchor="middle" class="wf-name">{n.name}</text>
              {!marker && <text x={box.width / 2} y={33} text-anchor="middle" class="wf-type">{n.type}{state ? ` · ${state}` : ""}</text>}
            </g>
          );
        })}
      </svg>
    </figure>
  );
}
