// Workflows (Amazon States Language state machines over functions): the list with a name
// search and pages, and a form to create one from a starter definition.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Editor, Field, Notice } from "../components.jsx";
import { go, href } from "../router.js";
import { errorText, fmtAgo } from "../util.js";

const STARTER = {
  Comment: "Call a function, then check its answer",
  StartAt: "Call",
  States: {
    Call: { Type: "Task", Resource: "my-function", ResultPath: "$.result", Next: "Check" },
    Check: {
      Type: "Choice",
      Choices: [{ Variable: "$.result.ok", BooleanEquals: true, Next: "Done" }],
      Default: "Give up",
    },
    Done: { Type: "Succeed" },
    "Give up": { Type: "Fail", Error: "NotOk", Cause: "the function did not say ok" },
  },
};

const countStates = (def) => {
  let n = 0;
  for (const state of Object.values((def && def.States) || {})) {
    n += 1;
    for (const b of state.Branches || []) n += countStates(b);
    n += countStates(state.ItemProcessor || state.Iterator);
  }
  return n;
};

/** The 422's details, one per line: "States.Call.Next: no state named …". */
export const problems = (err) =>
  Array.isArray(err && err.details) ? err.details.map((d) => `${d.field ? `${d.field}: ` : ""}${d.message}`) : [];

/** A refused definition: the API's message, then each problem once, as a list. */
export function DefinitionError({ error }) {
  const list = problems(error);
  return (
    <div class="notice error" role="alert">
      <div>{errorText(list.length ? { code: error.code, message: error.message } : error)}
        {list.length > 0 && <ul aria-label="definition problems">{list.map((p) => <li>{p}</li>)}</ul>}</div>
    </div>
  );
}

function CreateWorkflow({ onCancel }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [text, setText] = useState(JSON.stringify(STARTER, null, 2));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let definition;
    try { definition = JSON.parse(text); } catch (err) { setError({ message: `the definition is not valid JSON: ${err.message}` }); return; }
    setBusy(true);
    try {
      const made = await api.post("/api/v1/workflows", { name: name.trim(), definition, description });
      go("workflows", made.name);
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return (
    <form class="card" onSubmit={submit} aria-label="new workflow">
      <div class="grid">
        <Field label="Name" hint="lowercase letters, digits and -">
          <input aria-label="workflow name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <Field label="Description"><input aria-label="workflow description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} /></Field>
      </div>
      <Field label="Definition (Amazon States Language)" hint="a Task's Resource is a function: name, name:version or name:alias">
        <Editor value={text} onChange={setText} filename="definition.json" label="workflow definition" minHeight={300} />
      </Field>
      {error && <DefinitionError error={error} />}
      <div class="row actions">
        <button class="primary" type="submit" disabled={busy}>{busy ? "Creating…" : "Create workflow"}</button>
        <button type="button" class="link" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

export function WorkflowsPage({ creating }) {
  const [typed, setTyped] = useState("");
  const [name, setName] = useState("");
  const [offset, setOffset] = useState(0);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const limit = 20;
  useEffect(() => {
    const id = setTimeout(() => { if (typed.trim() !== name) { setName(typed.trim()); setOffset(0); } }, 250);
    return () => clearTimeout(id);
  }, [typed]);
  const latest = useRef(0);
  useEffect(() => {
    const mine = ++latest.current;
    api.get("/api/v1/workflows", { name, limit, offset }).then(
      (d) => mine === latest.current && (setData(d), setError(null)),
      (e) => mine === latest.current && setError(e),
    );
  }, [name, offset]);
  const total = data ? data.total : 0;
  return (
    <section aria-labelledby="wf-title">
      <div class="row head">
        <h1 id="wf-title">Workflows</h1>
        <span class="muted">{data ? `${total} in all` : "loading…"}</span>
        <div class="spacer" />
        {!creating && <a class="button primary" href={href("workflows") + "?new=1"}>New workflow</a>}
      </div>
      {creating && <CreateWorkflow onCancel={() => go("workflows")} />}
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <input type="search" placeholder="Search names" aria-label="search workflows" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
      </form>
      <Notice onClose={() => setError(null)}>{error && errorText(error)}</Notice>
      <div class="table-wrap">
        <table class="list" aria-label="workflows">
          <thead><tr><th>Name</th><th>Version</th><th>States</th><th class="hide-narrow">Starts at</th><th class="hide-narrow">Updated</th></tr></thead>
          <tbody>
            {(data ? data.workflows : []).map((w) => (
              <tr data-workflow={w.name}>
                <td><a href={href("workflows", w.name)}>{w.name}</a>{w.description && <div class="muted small">{w.description}</div>}</td>
                <td>v{w.version}</td>
                <td data-fact="states">{countStates(w.definition)}</td>
                <td class="hide-narrow mono">{w.definition.StartAt}</td>
                <td class="hide-narrow">{fmtAgo(w.updated_at)}</td>
              </tr>
            ))}
            {data && !data.workflows.length && (
              <tr><td colSpan={5} class="empty">No workflows{name ? " match" : " yet"}. <a href={href("workflows") + "?new=1"}>Create one</a>.</td></tr>
            )}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="pages">
        <button disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - limit))}>← Previous</button>
        <span>{total ? `${offset + 1}–${Math.min(offset + limit, total)} of ${total}` : "0 of 0"}</span>
        <button disabled={offset + limit >= total} onClick={() => setOffset(offset + limit)}>Next →</button>
      </nav>
    </section>
  );
}
