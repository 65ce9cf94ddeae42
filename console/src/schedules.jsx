// Schedules of a function (each tick one async invocation) or of a workflow (each tick one
// execution): cron / rate() expressions listed in words with the next run; create, edit,
// enable/disable, delete.
import { useEffect, useState } from "preact/hooks";
import { api, fn } from "./api.js";
import { Field, Notice, useInterval } from "./components.jsx";
import { errorText, fmtAgo } from "./util.js";

/** "in 4 min" / "12 s ago" with the exact time as a title. */
export function When({ ts }) {
  if (!ts) return <span class="muted">—</span>;
  const s = Math.round((new Date(ts).getTime() - Date.now()) / 1000);
  const text = s <= 0 ? fmtAgo(ts) : s < 60 ? `in ${s} s` : s < 3600 ? `in ${Math.round(s / 60)} min` : s < 86400 ? `in ${Math.round(s / 3600)} h` : new Date(ts).toLocaleString();
  return <time datetime={ts} title={new Date(ts).toLocaleString()}>{text}</time>;
}

const EMPTY = { expression: "rate(5 minutes)", timezone: "UTC", qualifier: "", event: "{}", description: "" };

function ScheduleForm({ initial = EMPTY, onSubmit, onCancel, label, workflow }) {
  const [form, setForm] = useState(initial);
  const [error, setError] = useState(null);
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const submit = async (e) => {
    e.preventDefault();
    let event;
    try { event = JSON.parse(form.event || "{}"); } catch (err) { setError(`the event is not valid JSON: ${err.message}`); return; }
    const body = { expression: form.expression.trim(), timezone: form.timezone.trim() || "UTC", event, description: form.description };
    if (form.qualifier.trim()) body.qualifier = form.qualifier.trim();
    try { await onSubmit(body); } catch (err) { setError(errorText(err)); }
  };
  return (
    <form class="card grid schedule-form" onSubmit={submit} aria-label={label}>
      <Field label="Expression" hint="cron (5 fields), @hourly, or rate(N minutes)">
        <input aria-label="schedule expression" required value={form.expression} onInput={set("expression")} />
      </Field>
      <Field label="Time zone"><input aria-label="time zone" value={form.timezone} onInput={set("timezone")} /></Field>
      {!workflow && (
        <Field label="Version or alias" hint="empty: the serving version">
          <input aria-label="version or alias" value={form.qualifier} onInput={set("qualifier")} />
        </Field>
      )}
      <Field label={workflow ? "Execution input (JSON)" : "Event (JSON)"}><textarea rows={2} aria-label="schedule event" value={form.event} onInput={set("event")} /></Field>
      <Field label="Description"><input aria-label="schedule description" value={form.description} onInput={set("description")} /></Field>
      <div class="row actions">
        <button class="primary" type="submit">{label}</button>
        {onCancel && <button type="button" class="link" onClick={onCancel}>Cancel</button>}
      </div>
      <Notice onClose={() => setError(null)}>{error}</Notice>
    </form>
  );
}

export const SchedulesPanel = ({ record }) => <Schedules base={`${fn(record.id)}/schedules`} key={record.id} />;

/** `base`: the schedules' collection; a workflow's ticks start executions (no version to pick). */
export function Schedules({ base, workflow = false }) {
  const [list, setList] = useState(null);
  const [editing, setEditing] = useState(null);
  const [added, setAdded] = useState(0);  // a fresh add form after each add
  const [error, setError] = useState(null);
  const load = () => api.get(base).then((d) => { setList(d.schedules); setError(null); }, setError);
  useEffect(() => { load(); }, [base]);
  useInterval(load, 10000);
  const act = (p) => p.then(load, setError);
  if (!list) return <p class="muted">Loading schedules…</p>;
  return (
    <div class="schedules">
      <Notice onClose={() => setError(null)}>{error && errorText(error)}</Notice>
      <table class="list" aria-label="schedules">
        <thead><tr><th>On</th><th>Expression</th><th>When</th>{!workflow && <th>Target</th>}<th>Next run</th><th class="hide-narrow">Last run</th><th /></tr></thead>
        <tbody>
          {list.map((s) => (
            <tr data-schedule={s.id} data-enabled={s.enabled ? "yes" : "no"}>
              <td><input type="checkbox" aria-label={`enable ${s.expression}`} checked={s.enabled}
                onChange={(e) => act(api.put(`${base}/${s.id}`, { enabled: e.currentTarget.checked }))} /></td>
              <td class="mono">{s.expression}{s.description && <div class="muted small">{s.description}</div>}</td>
              <td data-fact="summary">{s.summary} <span class="muted">({s.timezone})</span></td>
              {!workflow && <td>{s.qualifier || <span class="muted">serving version</span>}</td>}
              <td data-fact="next-run"><When ts={s.next_run_at} /></td>
              <td class="hide-narrow"><When ts={s.last_run_at} /></td>
              <td>
                <button class="link" onClick={() => setEditing(s.id)}>Edit</button>{" "}
                <button class="link" onClick={() => confirm(`Delete the schedule ${s.expression}?`) && act(api.del(`${base}/${s.id}`))}>Delete</button>
              </td>
            </tr>
          ))}
          {!list.length && <tr><td colSpan={workflow ? 6 : 7} class="empty">No schedules yet.</td></tr>}
        </tbody>
      </table>
      {editing ? (() => {
        const s = list.find((x) => x.id === editing);
        const initial = { expression: s.expression, timezone: s.timezone, qualifier: s.qualifier || "", event: JSON.stringify(s.event ?? {}), description: s.description };
        return <ScheduleForm key={editing} initial={initial} label="Save schedule" workflow={workflow} onCancel={() => setEditing(null)}
          onSubmit={async (body) => { await api.put(`${base}/${editing}`, body); setEditing(null); load(); }} />;
      })() : (
        <ScheduleForm key={added} label="Add schedule" workflow={workflow} onSubmit={async (body) => { await api.post(base, body); setAdded((n) => n + 1); load(); }} />
      )}
    </div>
  );
}
