// A function over time: invocations, errors by outcome, cold starts, duration p50/p95/p99,
// the same per version, recent calls. Source: the windowed stats API (GET …/stats?since&step)
// and the invocations list; an older server without them: the END lines of the logs.
import { useEffect, useState } from "preact/hooks";
import { api, fn, hasRoute } from "./api.js";
import { Chart } from "./chart.jsx";
import { Badge, Notice, useInterval } from "./components.jsx";
import { errorText, fmtAgo, fmtMs } from "./util.js";

const RANGES = [[900, "15 min"], [3600, "1 hour"], [21600, "6 hours"], [86400, "24 hours"]];

const END = /^END duration=([\d.]+)ms status=(\S+)(.*)$/;
export function outcomesFromLogs(entries) {
  const found = [];
  for (const e of entries) {
    if (e.stream !== "platform") continue;
    const m = END.exec(e.line);
    if (!m) continue;
    const fields = Object.fromEntries([...m[3].matchAll(/(\w+)=(\S+)/g)].map((x) => [x[1], x[2]]));
    found.push({
      id: e.invocation_id,
      created_at: e.ts,
      duration_ms: Number(m[1]),
      status: m[2],
      error_code: fields.error,
      version: fields.version ? Number(fields.version) : null,
      trigger: fields.trigger,
      cold_start: fields.cold_start === "true",
    });
  }
  return found;
}

const quantile = (sorted, q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null);

export function bucketize(outcomes, since, step) {
  const now = Date.now() / 1000;
  const n = Math.max(1, Math.ceil((now - since) / step));
  const xs = Array.from({ length: n }, (_, i) => Math.floor(since + i * step));
  const calls = new Array(n).fill(0), errors = new Array(n).fill(0), colds = new Array(n).fill(0);
  const durations = Array.from({ length: n }, () => []);
  for (const o of outcomes) {
    const i = Math.floor((new Date(o.created_at).getTime() / 1000 - since) / step);
    if (i < 0 || i >= n) continue;
    calls[i]++;
    if (o.status !== "succeeded") errors[i]++;
    if (o.cold_start) colds[i]++;
    durations[i].push(o.duration_ms);
  }
  const sorted = durations.map((d) => d.sort((a, b) => a - b));
  return {
    counts: [xs, calls, errors, colds],
    durations: [xs, sorted.map((d) => quantile(d, 0.5)), sorted.map((d) => quantile(d, 0.99))],
  };
}

/** The windowed stats API → chart columns: [xs, ...ys] per chart, and the per-version rows. */
export function fromStats(stats) {
  const xs = stats.series.map((b) => Math.floor(new Date(b.start).getTime() / 1000));
  const col = (get) => stats.series.map(get);
  return {
    counts: [xs, col((b) => b.invocations), col((b) => b.failed), col((b) => b.timed_out), col((b) => b.throttled), col((b) => b.cold_starts)],
    durations: [xs, col((b) => b.duration_ms.p50), col((b) => b.duration_ms.p95), col((b) => b.duration_ms.p99)],
    total: stats.totals.invocations,
    totals: stats.totals,
    byVersion: Object.entries(stats.by_version || {}).sort((a, b) => Number(b[0]) - Number(a[0])),
  };
}

async function recentInvocations(record, since) {
  if (await hasRoute("/api/v1/functions/{}/invocations")) {
    const data = await api.get(`${fn(record.id)}/invocations`, { limit: 50 });
    return { list: data.invocations || data.items || [], source: "api" };
  }
  const { entries } = await api.get(`${fn(record.id)}/logs`, { limit: 1000, since });
  return { list: outcomesFromLogs(entries), source: "logs" };
}

/** Older servers without the stats API: the same charts from the END lines of the logs. */
async function fromLogs(record, since, step) {
  const outcomes = outcomesFromLogs((await api.get(`${fn(record.id)}/logs`, { limit: 1000, since })).entries);
  const { counts, durations } = bucketize(outcomes, since, step);
  const none = counts[0].map(() => null);
  return { counts: [counts[0], counts[1], counts[2], none, none, counts[3]], durations: [durations[0], durations[1], none, durations[2]], total: outcomes.length, byVersion: [] };
}

const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);

export function ObservePanel({ record }) {
  const [range, setRange] = useState(3600);
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState(true);
  const load = async () => {
    const since = Math.floor(Date.now() / 1000 - range);
    const step = Math.max(10, Math.round(range / 40));
    try {
      const [charts, recent] = await Promise.all([
        (await hasRoute("/api/v1/functions/{}/stats"))
          ? api.get(`${fn(record.id)}/stats`, { since, step }).then(fromStats)
          : fromLogs(record, since, step),
        recentInvocations(record, since),
      ]);
      setData({ ...charts, recent: recent.list.slice(0, 50) });
      setError(null);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => { load(); }, [record.id, range]);
  useInterval(load, live ? 5000 : 0, [range]);
  return (
    <div class="observe">
      <div class="row filters">
        <select aria-label="time range" value={range} onChange={(e) => setRange(Number(e.currentTarget.value))}>
          {RANGES.map(([v, t]) => <option value={v}>last {t}</option>)}
        </select>
        <label class="inline"><input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> auto-refresh (5 s)</label>
        {data && <span class="muted">{data.total} invocation(s) in range</span>}
      </div>
      <Notice>{error && errorText(error)}</Notice>
      {data && (
        <>
          <div class="charts">
            <Chart title="Invocations" data={data.counts}
              series={[{ label: "calls", stroke: "#3b82f6" }, { label: "failed", stroke: "#ef4444" }, { label: "timed out", stroke: "#f97316" },
                { label: "throttled", stroke: "#eab308" }, { label: "cold starts", stroke: "#a855f7" }]} />
            <Chart title="Duration" unit=" ms" data={data.durations}
              series={[{ label: "p50", stroke: "#10b981" }, { label: "p95", stroke: "#0ea5e9" }, { label: "p99", stroke: "#f59e0b" }]} />
          </div>
          {data.byVersion.length > 0 && (
            <>
              <h2>By version</h2>
              <table class="list" aria-label="by version">
                <thead><tr><th>Version</th><th>Calls</th><th>Error rate</th><th>Errors by code</th><th>Cold</th><th>p50</th><th>p95</th><th>p99</th></tr></thead>
                <tbody>
                  {data.byVersion.map(([v, s]) => (
                    <tr data-version={v}>
                      <td>v{v}</td><td data-fact="calls">{s.invocations}</td><td>{pct(s.error_rate)}</td>
                      <td>{Object.entries(s.error_codes || {}).map(([c, n]) => `${c} ${n}`).join(", ") || "—"}</td>
                      <td>{s.cold_starts}</td><td>{fmtMs(s.duration_ms.p50)}</td><td>{fmtMs(s.duration_ms.p95)}</td><td>{fmtMs(s.duration_ms.p99)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          <h2>Recent invocations</h2>
          <table class="list" aria-label="recent invocations">
            <thead><tr><th>When</th><th>Invocation</th><th>Status</th><th>Version</th><th>Trigger</th><th>Duration</th><th>Cold start</th></tr></thead>
            <tbody>
              {data.recent.map((o) => (
                <tr data-invocation={o.id}>
                  <td>{fmtAgo(o.created_at)}</td>
                  <td class="mono"><a href={`#/functions/${encodeURIComponent(record.name)}/logs`} title={o.id}>{o.id.slice(-12)}</a></td>
                  <td><Badge status={o.status} title={o.error_code || ""} /></td>
                  <td>{o.version ?? "—"}</td>
                  <td>{o.trigger || "—"}</td>
                  <td>{fmtMs(o.duration_ms)}</td>
                  <td data-fact="cold-start">{o.cold_start == null ? "—" : o.cold_start ? "yes" : "no"}</td>
                </tr>
              ))}
              {!data.recent.length && <tr><td colSpan={7} class="empty">No invocations yet.</td></tr>}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}
