// A function's logs: search by invocation id and time, auto-refresh.
import { useEffect, useRef, useState } from "preact/hooks";
import { api, fn } from "./api.js";
import { Notice, useDebounced, useInterval } from "./components.jsx";
import { errorText } from "./util.js";

const RANGES = [["", "any time"], ["300", "last 5 min"], ["3600", "last hour"], ["86400", "last day"]];

/** The time of a line; with its date when not today (logs are kept 7 days: "any time"
 * showed yesterday's lines as if they were today's). */
function when(ts) {
  const at = new Date(ts);
  const time = at.toLocaleTimeString();
  return at.toDateString() === new Date().toDateString() ? time : `${at.toLocaleDateString()} ${time}`;
}

export function LogsPanel({ record }) {
  // The boxes hold what the user types (an auto-refresh never rewrites them); the invocation
  // id is searched a moment after the last key.
  const [query, setQuery] = useState({ invocation_id: "", range: "", text: "" });
  const invocationId = useDebounced(query.invocation_id.trim());
  const [entries, setEntries] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(true);
  const latest = useRef(0);
  const load = () => {
    const mine = ++latest.current;  // a late answer to an older search must not show
    const since = query.range ? Math.floor(Date.now() / 1000 - Number(query.range)) : undefined;
    api.get(`${fn(record.id)}/logs`, { limit: 500, since, invocation_id: invocationId }).then(
      (d) => { if (mine === latest.current) { setEntries(d.entries); setError(null); } },
      (e) => mine === latest.current && setError(e),
    );
  };
  useEffect(load, [record.id, invocationId, query.range]);
  useInterval(load, live ? 3000 : 0, [invocationId, query.range]);
  const text = query.text.toLowerCase();
  const shown = (entries || []).filter((e) => !text || e.line.toLowerCase().includes(text));
  return (
    <div class="logs-panel">
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <input type="search" aria-label="invocation id" placeholder="invocation id" value={query.invocation_id}
          onInput={(e) => setQuery({ ...query, invocation_id: e.currentTarget.value })} />
        <select aria-label="time range" value={query.range} onChange={(e) => setQuery({ ...query, range: e.currentTarget.value })}>
          {RANGES.map(([v, t]) => <option value={v}>{t}</option>)}
        </select>
        <input type="search" aria-label="filter lines" placeholder="filter lines" value={query.text}
          onInput={(e) => setQuery({ ...query, text: e.currentTarget.value })} />
        <label class="inline"><input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> auto-refresh</label>
        <button type="button" onClick={load}>Refresh</button>
      </form>
      <Notice>{error && errorText(error)}</Notice>
      <table class="list log-table" aria-label="log entries">
        <thead><tr><th>Time</th><th>Invocation</th><th>Stream</th><th>Line</th></tr></thead>
        <tbody>
          {shown.map((e) => (
            <tr class={`stream-${e.stream}`} data-invocation={e.invocation_id}>
              <td class="nowrap" title={e.ts}>{when(e.ts)}</td>
              <td><button class="link mono" title="only this invocation" onClick={() => setQuery({ ...query, invocation_id: e.invocation_id })}>{e.invocation_id.slice(-10)}</button></td>
              <td>{e.stream}</td>
              <td class="mono pre">{e.line}</td>
            </tr>
          ))}
          {entries && !shown.length && <tr><td colSpan={4} class="empty">No log lines.</td></tr>}
        </tbody>
      </table>
    </div>
  );
}
