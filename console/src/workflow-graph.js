// A workflow definition (Amazon States Language) as a graph, and an execution's history as
// the state each node reached. Pure functions: the page lays them out (workflow-view.jsx).

export const START = "⟨start⟩";
export const END = "⟨end⟩";

const TERMINAL = new Set(["Succeed", "Fail"]);

/** Where a state can go next: [{to, kind}] (kind: next | default | choice | catch). */
function exits(state) {
  const out = [];
  if (state.Next) out.push({ to: state.Next, kind: "next" });
  for (const [i, choice] of (state.Choices || []).entries()) {
    if (choice.Next) out.push({ to: choice.Next, kind: "choice", label: `rule ${i + 1}` });
  }
  if (state.Default) out.push({ to: state.Default, kind: "default", label: "default" });
  for (const c of state.Catch || []) out.push({ to: c.Next, kind: "catch", label: (c.ErrorEquals || []).join(", ") });
  return out;
}

const ends = (state) => state.End === true || TERMINAL.has(state.Type);

/**
 * `{nodes, edges, clusters}`: a node per state (ids scoped by branch: "P/0/Inner"), the start
 * and end markers, an edge per transition; a Parallel's branches and a Map's item processor
 * are clusters whose last states lead to where the Parallel or Map goes next.
 */
export function graphOf(definition) {
  const nodes = [{ id: START, name: "Start", type: "start" }, { id: END, name: "End", type: "end" }];
  const edges = [];
  const clusters = [];

  // Adds one (sub-)machine; returns [its start node id, the ids of the states that end it].
  function machine(def, prefix, parent) {
    const states = (def && def.States) || {};
    const id = (name) => `${prefix}${name}`;
    const last = [];
    for (const [name, state] of Object.entries(states)) {
      nodes.push({ id: id(name), name, type: state.Type, parent, resource: state.Resource });
      const inner = state.Type === "Parallel"
        ? (state.Branches || []).map((b, i) => [b, `branch ${i + 1}`])
        : state.Type === "Map" ? [[state.ItemProcessor || state.Iterator, "each item"]] : [];
      for (const e of exits(state)) {
        // A Parallel or Map goes on through its branches: their last states lead to its Next.
        if (inner.length && e.kind === "next") continue;
        if (e.to in states) edges.push({ from: id(name), to: id(e.to), kind: e.kind, label: e.label });
      }
      for (const [i, [sub, label]] of inner.entries()) {
        const cluster = `${id(name)}/${i}`;
        clusters.push({ id: cluster, label: `${name}: ${label}`, parent });
        const [first, finals] = machine(sub, `${cluster}/`, cluster);
        if (first) edges.push({ from: id(name), to: first, kind: "fork" });
        const after = state.Next ? id(state.Next) : null;
        if (after) for (const f of finals) edges.push({ from: f, to: after, kind: "join" });
      }
      if (ends(state)) last.push(id(name));
    }
    return [def && def.StartAt in states ? id(def.StartAt) : null, last];
  }

  const [first, finals] = machine(definition, "", null);
  if (first) edges.push({ from: START, to: first, kind: "next" });
  // Only the top level's final states end the execution; a branch's lead back to its parent.
  for (const f of finals) edges.push({ from: f, to: END, kind: "next" });
  return { nodes, edges, clusters };
}

const FAILED = /(?:TaskFailed|TaskTimedOut|BranchFailed|IterationFailed)$/;

/**
 * How far an execution got, from its history: `{states: {name: run}, taken: Set("from→to"), ended}`,
 * run ∈ running | retrying | succeeded | failed | caught | aborted. States are named as in the
 * definition (events carry the name, not the branch's scope), so a name used in two branches
 * shows the newest of the two.
 */
export function runOf(events, execution) {
  const states = {};
  const taken = new Set();
  const lastIn = {}; // branch id → the state it was in
  for (const e of events) {
    const name = e.state;
    if (e.type.endsWith("StateEntered") && name) {
      const before = lastIn[e.branch ?? 0];
      if (before && before !== name) taken.add(`${before}→${name}`);
      lastIn[e.branch ?? 0] = name;
      states[name] = "running";
    } else if (!name) {
      continue;
    } else if (e.type === "RetryScheduled") {
      states[name] = "retrying";
    } else if (e.type === "CaughtError") {
      states[name] = "caught";
      if (e.details && e.details.next) taken.add(`${name}→${e.details.next}`);
    } else if (FAILED.test(e.type)) {
      states[name] = "failed";
    } else if (e.type.endsWith("StateExited") || e.type.endsWith("StateSucceeded")) {
      if (states[name] !== "caught") states[name] = "succeeded";
    }
  }
  const status = execution && execution.status;
  if (status && status !== "running") {
    // What was still in progress when it ended is where it ended (a Fail state, an abort,
    // the time limit); a successful end leaves nothing in progress.
    const end = { failed: "failed", timed_out: "failed", aborted: "aborted", succeeded: "succeeded" }[status];
    for (const [name, run] of Object.entries(states)) {
      if (run === "running" || run === "retrying") states[name] = end;
    }
  }
  const ended = status && status !== "running" ? (status === "timed_out" ? "failed" : status) : undefined;
  return { states, taken, ended };
}
