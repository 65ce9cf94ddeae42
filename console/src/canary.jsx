// An alias's automatic canary: start one (the new version, its steps and thresholds), watch
// its progress step by step with each decision, abort it (the alias serves the old version).
import { useState } from "preact/hooks";
import { api, fn } from "./api.js";
import { Badge, Field, Notice } from "./components.jsx";
import { errorText, fmtAgo, fmtMs } from "./util.js";

const canaryPath = (record, alias) => `${fn(record.id)}/aliases/${encodeURIComponent(alias.name)}/canary`;

/** The canary cell: status, the step reached (a progress bar), and Abort while it runs. */
export function CanaryProgress({ record, alias, onChange }) {
  const [error, setError] = useState(null);
  const canary = alias.canary;
  if (!canary) return <span class="muted">—</span>;
  const running = canary.status === "progressing";
  const abort = async () => {
    setError(null);
    try { onChange(await api.del(canaryPath(record, alias))); } catch (e) { setError(e); }
  };
  const last = canary.history[canary.history.length - 1];
  return (
    <div class="canary" data-canary={canary.status}>
      <div>
        <Badge status={canary.status} /> v{canary.from_version} → v{canary.version}
        {running && <> at <strong data-fact="canary-weight">{canary.weight}%</strong></>}
      </div>
      <progress max={canary.steps.length} value={canary.status === "promoted" ? canary.steps.length : canary.step + 1}
        aria-label={`${alias.name} canary step`} />
      <div class="muted small" data-fact="canary-step">
        step {Math.min(canary.step + 1, canary.steps.length)} of {canary.steps.length} ({canary.steps.join(" → ")} %)
        {running ? `, ${canary.interval_sec} s each` : canary.finished_at ? `, ended ${fmtAgo(canary.finished_at)}` : ""}
      </div>
      {canary.reason && <div class="small" data-fact="canary-reason">{canary.reason}</div>}
      {last && last.decision !== "started" && (
        <div class="muted small">last check: {last.decision}, {last.invocations} call(s), {last.errors} error(s)
          {last.p99_ms != null && `, p99 ${fmtMs(last.p99_ms)}`}</div>
      )}
      {running && <button class="danger" onClick={abort}>Abort canary</button>}
      {error && <Notice>{errorText(error)}</Notice>}
    </div>
  );
}

/** Start a canary on an alias: steps are % of its calls on the new version. */
export function CanaryForm({ record, alias, versions, onDone, onCancel }) {
  const candidates = versions.filter((v) => v.status === "ready" && v.version !== alias.version);
  const [form, setForm] = useState({
    version: candidates.length ? String(candidates[0].version) : "",
    steps: "10, 25, 50, 100", interval: "60", errorRate: "5", minCalls: "10", p99: "",
    onIdle: "hold", idleIntervals: "3",
  });
  const [error, setError] = useState(null);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    const body = {
      version: Number(form.version),
      steps: form.steps.split(/[\s,]+/).filter(Boolean).map(Number),
      interval_sec: Number(form.interval),
      max_error_rate: Number(form.errorRate) / 100,
      min_invocations: Number(form.minCalls),
      on_idle: form.onIdle,
      idle_intervals: Number(form.idleIntervals),
    };
    if (form.p99.trim()) body.max_p99_ms = Number(form.p99);
    try { onDone(await api.post(canaryPath(record, alias), body)); } catch (err) { setError(err); }
  };
  if (!candidates.length) {
    return <Notice kind="info" onClose={onCancel}>No other ready version to send {alias.name}'s calls to.</Notice>;
  }
  return (
    <form class="card grid canary-form" onSubmit={submit} aria-label={`start a canary on ${alias.name}`}>
      <Field label="New version">
        <select aria-label="canary version" value={form.version} onChange={set("version")}>
          {candidates.map((v) => <option value={v.version}>v{v.version}</option>)}
        </select>
      </Field>
      <Field label="Steps (%)" hint="the new version's share, step by step; 100 is added last">
        <input aria-label="canary steps" required value={form.steps} onInput={set("steps")} />
      </Field>
      <Field label="Each step (s)"><input type="number" min="5" aria-label="canary interval" required value={form.interval} onInput={set("interval")} /></Field>
      <Field label="Max error rate (%)" hint="above it: roll back">
        <input type="number" min="0" max="100" step="any" aria-label="canary max error rate" required value={form.errorRate} onInput={set("errorRate")} />
      </Field>
      <Field label="Calls needed per step"><input type="number" min="1" aria-label="canary min invocations" required value={form.minCalls} onInput={set("minCalls")} /></Field>
      <Field label="Max p99 (ms)" hint="optional"><input type="number" min="1" step="any" aria-label="canary max p99" value={form.p99} onInput={set("p99")} /></Field>
      <Field label="Without enough calls" hint="after this many intervals short of the calls needed">
        <select aria-label="canary on idle" value={form.onIdle} onChange={set("onIdle")}>
          <option value="hold">keep waiting</option>
          <option value="promote">promote by time</option>
          <option value="rollback">roll back</option>
        </select>
        <input type="number" min="1" aria-label="canary idle intervals" required value={form.idleIntervals} onInput={set("idleIntervals")} />
      </Field>
      <div class="row actions">
        <button class="primary" type="submit">Start canary</button>
        <button type="button" class="link" onClick={onCancel}>Cancel</button>
      </div>
      <Notice onClose={() => setError(null)}>{error && errorText(error)}</Notice>
    </form>
  );
}
