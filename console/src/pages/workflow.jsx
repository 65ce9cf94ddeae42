// One workflow: its state graph, its definition (edit → a new version), start an execution
// with an input, its executions, and one execution followed live: the graph coloured by the
// path it took, its history as it grows, abort while it runs.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Badge, Editor, Notice, useInterval } from "../components.jsx";
import { go, href } from "../router.js";
import { errorText, fmtAgo, fmtMs, pretty, remember } from "../util.js";
import { runOf } from "../workflow-graph.js";
import { Schedules } from "../schedules.jsx";
import { WorkflowGraph } from "../workflow-view.jsx";
import { DefinitionError } from "./workflows.jsx";

const wf = (ref) => `/api/v1/workflows/${encodeURIComponent(ref)}`;
const ex = (id) => `/api/v1/executions/${encodeURIComponent(id)}`;
const took = (e) => (e.stopped_at ? new Date(e.stopped_at) - new Date(e.started_at) : null);

/** An execution and its history, re-read every second while it runs. */
function useExecution(id) {
  const [state, setState] = useState({ execution: null, events: [], error: null });
  const load = () => {
    if (!id) return;
    Promise.all([api.get(ex(id)), api.get(`${ex(id)}/history`)]).then(
      ([execution, history]) => setState({ execution, events: history.events, error: null }),
      (error) => setState((s) => ({ ...s, error })),
    );
  };
  useEffect(() => { setState({ execution: null, events: [], error: null }); load(); }, [id]);
  const running = !state.execution || state.execution.status === "running";
  useInterval(load, id && running && !state.error ? 1000 : 0, [id]);
  return { ...state, reload: load };
}

function StartExecution({ workflow, onStarted }) {
  const key = `workflowInput.${workflow.id}`;
  const [input, setInput] = useState(() => remember.get(key, "{}"));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setError(null);
    try { JSON.parse(input || "null"); } catch (e) { setError({ message: `the input is not valid JSON: ${e.message}` }); return; }
    remember.set(key, input);
    setBusy(true);
    try { onStarted(await api.post(`${wf(workflow.id)}/executions`, input || "{}")); } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return (
    <section class="card" aria-label="start an execution">
      <h2>Start an execution</h2>
      <Editor value={input} onChange={setInput} filename="input.json" label="execution input" minHeight={90} />
      <div class="row actions">
        <button class="primary" onClick={start} disabled={busy}>{busy ? "Starting…" : "Start execution"}</button>
        <span class="muted small">on v{workflow.version}</span>
      </div>
      <Notice onClose={() => setError(null)}>{error && errorText(error)}</Notice>
    </section>
  );
}

function Executions({ workflow, current, bump }) {
  const [data, setData] = useState(null);
  const [status, setStatus] = useState("");
  const [error, setError] = useState(null);
  const load = () => api.get(`${wf(workflow.id)}/executions`, { status, limit: 20 }).then((d) => { setData(d); setError(null); }, setError);
  useEffect(() => { load(); }, [workflow.id, status, bump]);
  useInterval(load, 3000, [workflow.id, status]);
  return (
    <section aria-label="executions">
      <div class="row">
        <h2>Executions</h2>
        <span class="muted">{data ? `${data.total} in all` : ""}</span>
        <div class="spacer" />
        <select aria-label="execution status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          <option value="">Any status</option>
          {["running", "succeeded", "failed", "timed_out", "aborted"].map((s) => <option value={s}>{s}</option>)}
        </select>
      </div>
      <Notice>{error && errorText(error)}</Notice>
      <table class="list">
        <thead><tr><th>Execution</th><th>Status</th><th>Started</th><th>Took</th><th class="hide-narrow">Version</th></tr></thead>
        <tbody>
          {(data ? data.executions : []).map((e) => (
            <tr data-execution={e.id} aria-current={e.id === current ? "true" : undefined} class={e.id === current ? "current" : ""}>
              <td class="mono"><a href={href("workflows", workflow.name, "executions", e.id)} title={e.id}>{e.id.slice(-12)}</a></td>
              <td><Badge status={e.status} title={e.error || ""} /></td>
              <td>{fmtAgo(e.started_at)}</td>
              <td>{fmtMs(took(e))}</td>
              <td class="hide-narrow">v{e.workflow_version}</td>
            </tr>
          ))}
          {data && !data.executions.length && <tr><td colSpan={5} class="empty">No executions{status ? ` ${status}` : " yet"}.</td></tr>}
        </tbody>
      </table>
    </section>
  );
}

const short = (details) => {
  const text = JSON.stringify(details || {});
  return text === "{}" ? "" : text.length > 160 ? `${text.slice(0, 160)}…` : text;
};

function ExecutionView({ run, onChange }) {
  const { execution, events, error } = run;
  const [stopError, setStopError] = useState(null);
  if (error) return <Notice>{error.status === 404 ? "No such execution." : errorText(error)}</Notice>;
  if (!execution) return <p class="muted">Loading the execution…</p>;
  const abort = async () => {
    setStopError(null);
    try { await api.post(`${ex(execution.id)}/stop`, { error: "Aborted", cause: "aborted from the console" }); run.reload(); onChange(); }
    catch (e) { setStopError(e); }
  };
  return (
    <section class="card execution" aria-label="execution" data-execution-status={execution.status}>
      <div class="row">
        <h2>Execution <span class="mono">{execution.id}</span></h2>
        <Badge status={execution.status} />
        <span class="muted small">v{execution.workflow_version} · started {fmtAgo(execution.started_at)}
          {execution.stopped_at && ` · took ${fmtMs(took(execution))}`}</span>
        <div class="spacer" />
        {execution.status === "running" && <button class="danger" onClick={abort}>Abort execution</button>}
      </div>
      <Notice onClose={() => setStopError(null)}>{stopError && errorText(stopError)}</Notice>
      {execution.error && (
        <div class="notice error" role="alert"><div><strong data-fact="execution-error">{execution.error}</strong>{execution.cause && <>: <span>{execution.cause}</span></>}</div></div>
      )}
      <div class="split">
        <div><h3>Input</h3><pre class="output" aria-label="execution input">{pretty(execution.input)}</pre></div>
        <div><h3>Output</h3><pre class="output" aria-label="execution output">{execution.output === null || execution.output === undefined ? "—" : pretty(execution.output)}</pre></div>
      </div>
      <h3>History {execution.status === "running" && <span class="muted small">(live)</span>}</h3>
      <div class="table-wrap">
        <table class="list" aria-label="execution history">
          <thead><tr><th>#</th><th>Time</th><th>Event</th><th>State</th><th>Details</th></tr></thead>
          <tbody>
            {events.map((e) => (
              <tr data-event={e.type}>
                <td>{e.id}</td>
                <td class="nowrap">{new Date(e.timestamp).toLocaleTimeString()}</td>
                <td>{e.type}</td>
                <td>{e.state || ""}{e.branch ? <span class="muted small"> (branch {e.branch})</span> : ""}</td>
                <td class="pre mono small">{short(e.details)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function Definition({ workflow, onSaved }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState("");
  const [error, setError] = useState(null);
  const edit = () => { setText(JSON.stringify(workflow.definition, null, 2)); setError(null); setEditing(true); };
  const save = async () => {
    let definition;
    try { definition = JSON.parse(text); } catch (e) { setError({ message: `the definition is not valid JSON: ${e.message}` }); return; }
    try { onSaved(await api.put(wf(workflow.id), { definition })); setEditing(false); } catch (e) { setError(e); }
  };
  return (
    <section aria-label="definition">
      <div class="row">
        <h2>Definition</h2>
        <span class="muted small">v{workflow.version}, updated {fmtAgo(workflow.updated_at)}</span>
        <div class="spacer" />
        {!editing && <button onClick={edit}>Edit definition</button>}
      </div>
      {editing ? (
        <>
          <Editor value={text} onChange={setText} filename="definition.json" label="workflow definition" minHeight={260} />
          {error && <DefinitionError error={error} />}
          <div class="row actions">
            <button class="primary" onClick={save}>Save as v{workflow.version + 1}</button>
            <button class="link" onClick={() => setEditing(false)}>Cancel</button>
          </div>
        </>
      ) : <pre class="output" aria-label="definition JSON">{JSON.stringify(workflow.definition, null, 2)}</pre>}
    </section>
  );
}

export function WorkflowPage({ ref_, execution: executionId }) {
  const [workflow, setWorkflow] = useState(null);
  const [error, setError] = useState(null);
  const [bump, setBump] = useState(0);
  useEffect(() => { api.get(wf(ref_)).then(setWorkflow, setError); }, [ref_]);
  const run = useExecution(executionId);
  if (error) {
    return <section><h1>{ref_}</h1><Notice>{error.status === 404 ? `No workflow named ${ref_}.` : errorText(error)}</Notice><a href={href("workflows")}>← All workflows</a></section>;
  }
  if (!workflow) return <p class="muted">Loading…</p>;
  const remove = async () => {
    if (!confirm(`Delete the workflow ${workflow.name}? Its executions stay readable.`)) return;
    try { await api.del(wf(workflow.id)); go("workflows"); } catch (e) { setError(e); }
  };
  // The graph of the version the execution ran when it is the one shown; else no colours.
  const shown = run.execution && run.execution.workflow_version === workflow.version ? runOf(run.events, run.execution) : null;
  return (
    <section aria-labelledby="wf-name">
      <div class="row head">
        <a href={href("workflows")} class="muted">Workflows /</a>
        <h1 id="wf-name">{workflow.name}</h1>
        <span class="muted">v{workflow.version}</span>
        {workflow.description && <span class="muted">— {workflow.description}</span>}
        <div class="spacer" />
        <button class="link" onClick={remove}>Delete</button>
      </div>
      <div class="split wf-top">
        <div>
          <WorkflowGraph definition={workflow.definition} run={shown}
            label={shown ? `graph of execution ${run.execution.id}` : "workflow graph"} />
          {run.execution && !shown && <p class="muted small">This execution ran v{run.execution.workflow_version}; the graph shows v{workflow.version}.</p>}
          <p class="wf-legend small">
            {["running", "succeeded", "caught", "failed", "aborted"].map((s) => <span class={`run-${s}`}>{s}</span>)}
          </p>
        </div>
        <div>
          <StartExecution workflow={workflow} onStarted={(e) => { setBump((n) => n + 1); go("workflows", workflow.name, "executions", e.id); }} />
          <Executions workflow={workflow} current={executionId} bump={bump} />
        </div>
      </div>
      {executionId && <ExecutionView run={run} onChange={() => setBump((n) => n + 1)} key={executionId} />}
      <Definition workflow={workflow} onSaved={setWorkflow} />
      <section aria-label="workflow schedules">
        <h2>Schedules</h2>
        <p class="muted small">Each tick starts one execution of the latest version with the schedule's input.</p>
        <Schedules base={`${wf(workflow.id)}/schedules`} workflow />
      </section>
    </section>
  );
}
