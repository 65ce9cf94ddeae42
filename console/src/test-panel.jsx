// The test panel: an event editor with saved events, invoke (sync or async) and everything
// the call said — result, status, duration, version, cold start, its log lines, the error.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, fn, invoke } from "./api.js";
import { Badge, Editor, Notice } from "./components.jsx";
import { errorText, fmtMs, pretty, remember } from "./util.js";
import { runtime as runtimeInfo } from "./runtimes.js";

const FINAL = new Set(["succeeded", "failed", "timed_out"]);

/** The call's log lines: the invoke's own tail when the server sends one, else the logs API. */
async function logLines(record, result) {
  if (result.logTail !== null) return result.logTail.split("\n").filter(Boolean);
  if (!result.invocationId) return [];
  // Logs are written off the request path in batches (≤ one flush interval): look a few times.
  for (let i = 0; i < 8; i++) {
    const { entries } = await api.get(`${fn(record.id)}/logs`, { invocation_id: result.invocationId, limit: 200 });
    if (entries.length) return entries.reverse().map((e) => e.line);
    await new Promise((r) => setTimeout(r, 400));
  }
  return [];
}

function Stack({ lines, files }) {
  return (
    <pre class="stack" aria-label="stack trace">
      {(lines || []).map((line) => {
        const mine = files.some((f) => line.includes(f));
        return <div class={mine ? "mine" : ""}>{line}</div>;
      })}
    </pre>
  );
}

/** A function's error, sync or async: its type, message and stack with the user's lines marked. */
function FnError({ error, files }) {
  return (
    <div class="fn-error" role="alert">
      <div><strong data-fact="error-type">{error.type || error.code}</strong>: <span data-fact="error-message">{error.message}</span>
        {error.exit_code !== undefined && <span class="muted"> (exit code {error.exit_code})</span>}</div>
      {error.stack && <Stack lines={Array.isArray(error.stack) ? error.stack : String(error.stack).split("\n")} files={files} />}
    </div>
  );
}

function Result({ result, logs, files }) {
  const error = !result.ok && result.body && result.body.error;
  return (
    <section class="result card" aria-label="invocation result" data-status={result.status}>
      <dl class="facts">
        <div><dt>Status</dt><dd data-fact="status"><span class={`badge ${result.ok ? "ok" : "bad"}`}>{result.status}</span></dd></div>
        <div><dt>Duration</dt><dd data-fact="duration">{fmtMs(result.durationMs)}</dd></div>
        <div><dt>Round trip</dt><dd>{fmtMs(result.roundTripMs)}</dd></div>
        <div><dt>Version</dt><dd data-fact="version">{result.version ?? "—"}</dd></div>
        <div><dt>Cold start</dt><dd data-fact="cold-start">{result.version ? (result.coldStart ? "yes" : "no") : "—"}</dd></div>
        <div><dt>Invocation</dt><dd data-fact="invocation-id"><code>{result.invocationId || "—"}</code></dd></div>
      </dl>
      {error ? (
        <FnError error={error} files={files} />
      ) : (
        <pre class="output" aria-label="result body">{pretty(result.body)}</pre>
      )}
      <h3>Log</h3>
      <pre class="log" aria-label="invocation log">{logs === null ? "…" : logs.length ? logs.join("\n") : "(no log lines)"}</pre>
    </section>
  );
}

function AsyncResult({ id, files }) {
  const [inv, setInv] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let gone = false;
    let timer;
    const poll = async () => {
      try {
        const data = await api.get(`/api/v1/invocations/${id}`);
        if (gone) return;
        setInv(data);
        if (FINAL.has(data.status)) return;
      } catch (e) { if (!gone) setError(e); }
      timer = setTimeout(poll, 500);
    };
    poll();
    return () => { gone = true; clearTimeout(timer); };
  }, [id]);
  return (
    <section class="result card" aria-label="async invocation" data-status={inv ? inv.status : "pending"}>
      <div class="row"><strong>Async invocation</strong> <code>{id}</code> {inv && <Badge status={inv.status} />}
        {inv && <span class="muted">attempts {inv.attempts} · {fmtMs(inv.duration_ms)} · version {inv.version}</span>}</div>
      <Notice>{error && errorText(error)}</Notice>
      {inv && FINAL.has(inv.status) && (inv.error
        ? <FnError error={inv.error} files={files} />
        : <pre class="output" aria-label="async result">{pretty(inv.result)}</pre>)}
    </section>
  );
}

export function TestPanel({ record }) {
  const key = `event.${record.name}`;
  const savedKey = `events.${record.name}`;
  const [event, setEventState] = useState(() => remember.get(key, "{}"));
  // Kept at once, not in an effect: a tab closed right after a keystroke keeps it too.
  const setEvent = (text) => { remember.set(key, text); setEventState(text); };
  const [saved, setSaved] = useState(() => remember.get(savedKey, []));
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState(null);
  const [logs, setLogs] = useState(null);
  const [asyncId, setAsyncId] = useState(null);
  const [error, setError] = useState(null);
  const [version, setVersion] = useState("");
  const [files, setFiles] = useState([]);
  const run = useRef(null);

  useEffect(() => {
    if (!runtimeInfo(record.runtime).source) return;
    api.get(`${fn(record.id)}/code`).then((d) => d && d.files && setFiles(Object.keys(d.files)), () => {});
  }, [record.id]);

  const parsed = () => {
    try { return JSON.parse(event || "{}"); } catch (e) { setError(`The event is not valid JSON: ${e.message}`); return undefined; }
  };
  run.current = async (mode) => {
    setError(null);
    const body = parsed();
    if (body === undefined) return;
    setBusy(true);
    try {
      if (mode === "async") {
        setResult(null);
        const r = await invoke(record.id, body, { async: true, version: version || undefined });
        if (!r.ok) throw Object.assign(new Error(r.body?.error?.message || `HTTP ${r.status}`), { code: r.body?.error?.code });
        setAsyncId(r.body.invocation_id);
        return;
      }
      setAsyncId(null);
      setLogs(null);
      const r = await invoke(record.id, body, { version: version || undefined });
      setResult(r);
      if (!r.functionError && !r.ok && r.body?.error?.code !== "function_error" && r.status >= 400 && !r.invocationId) {
        setLogs([]);
      } else {
        setLogs(await logLines(record, r));
      }
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const save = () => {
    const name = prompt("Name this test event", `event ${saved.length + 1}`);
    if (!name) return;
    const next = [...saved.filter((s) => s.name !== name), { name, body: event }];
    setSaved(next);
    remember.set(savedKey, next);
  };
  const remove = (name) => { const next = saved.filter((s) => s.name !== name); setSaved(next); remember.set(savedKey, next); };

  return (
    <div class="test-panel" onKeyDown={(e) => { if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run.current("sync"); } }}>
      <div class="split">
        <div>
          <div class="row">
            <h2>Event</h2>
            <div class="spacer" />
            {saved.length > 0 && (
              <select aria-label="saved events" value="" onChange={(e) => { const s = saved.find((x) => x.name === e.currentTarget.value); s && setEvent(s.body); }}>
                <option value="">Saved events…</option>
                {saved.map((s) => <option value={s.name}>{s.name}</option>)}
              </select>
            )}
            <button type="button" onClick={save}>Save event</button>
            {saved.length > 0 && <button type="button" class="link" onClick={() => remove(saved[saved.length - 1].name)}>Forget last</button>}
          </div>
          <Editor value={event} onChange={setEvent} filename="event.json" label="test event (JSON)" minHeight={180} />
          <div class="row actions">
            <button class="primary" disabled={busy} onClick={() => run.current("sync")}>{busy ? "Invoking…" : "Invoke"}</button>
            <button disabled={busy} onClick={() => run.current("async")}>Invoke async</button>
            <label class="inline">version <input type="number" min="1" aria-label="version to invoke" placeholder={String(record.active_version ?? "")}
              value={version} onInput={(e) => setVersion(e.currentTarget.value)} /></label>
            <small class="muted">Ctrl+Enter invokes</small>
          </div>
          <Notice onClose={() => setError(null)}>{error}</Notice>
        </div>
        <div>
          {result && <Result result={result} logs={logs} files={files} />}
          {asyncId && <AsyncResult id={asyncId} key={asyncId} files={files} />}
          {!result && !asyncId && <p class="muted">Invoke to see the result, its status, duration, the version that served, whether it was a cold start and its log lines.</p>}
        </div>
      </div>
    </div>
  );
}
