// The platform: GET /api/v1/stats and /api/v1/quota, and every schedule (GET /api/v1/schedules).
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Notice, useInterval } from "../components.jsx";
import { href } from "../router.js";
import { When } from "../schedules.jsx";
import { errorText, fmtBytes, fmtMs } from "../util.js";

const Stat = ({ label, value }) => <div class="stat"><div class="value">{value}</div><div class="label">{label}</div></div>;
const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);

export function SystemPage() {
  const [stats, setStats] = useState(null);
  const [quota, setQuota] = useState(null);
  const [error, setError] = useState(null);
  const load = () => Promise.all([api.get("/api/v1/stats"), api.get("/api/v1/quota")])
    .then(([s, q]) => { setStats(s); setQuota(q); setError(null); }, setError);
  useEffect(() => { load(); }, []);
  useInterval(load, 5000);
  return (
    <section aria-labelledby="sys-title">
      <h1 id="sys-title">System</h1>
      <Notice>{error && errorText(error)}</Notice>
      {stats && (
        <>
          <div class="stats">
            <Stat label="invocations" value={stats.total_invocations} />
            <Stat label="success rate" value={pct(stats.success_rate)} />
            <Stat label="failed" value={stats.failed} />
            <Stat label="timed out" value={stats.timed_out} />
            <Stat label="throttled" value={stats.throttled} />
            <Stat label="cold starts" value={stats.cold_starts} />
            <Stat label="avg duration" value={fmtMs(stats.duration_ms.avg)} />
            <Stat label="max duration" value={fmtMs(stats.duration_ms.max)} />
            <Stat label="functions" value={stats.functions.total} />
          </div>
          <div class="split">
            <table class="list" aria-label="by runtime">
              <thead><tr><th>Runtime</th><th>Functions</th><th>Calls</th><th>Success</th><th>Avg</th></tr></thead>
              <tbody>
                {Object.entries(stats.functions.by_runtime).map(([rt, n]) => {
                  const s = stats.by_runtime[rt];
                  return <tr><td>{rt}</td><td>{n}</td><td>{s ? s.total_invocations : 0}</td><td>{s ? pct(s.success_rate) : "—"}</td><td>{s ? fmtMs(s.duration_ms.avg) : "—"}</td></tr>;
                })}
              </tbody>
            </table>
            <table class="list" aria-label="errors">
              <thead><tr><th>Error</th><th>Count</th></tr></thead>
              <tbody>
                {Object.entries({ ...stats.by_error_type, ...Object.fromEntries(Object.entries(stats.by_function_error_type).map(([k, v]) => [`function: ${k}`, v])) }).map(([k, v]) => <tr><td>{k}</td><td>{v}</td></tr>)}
              </tbody>
            </table>
          </div>
        </>
      )}
      {quota && (
        <>
          <h2>Quota</h2>
          <div class="stats">
            <Stat label="functions" value={`${quota.usage.functions} / ${quota.limits.max_functions}`} />
            <Stat label="stored code" value={fmtBytes(quota.usage.stored_bytes)} />
            <Stat label="running now" value={`${quota.usage.concurrent_invocations.server} / ${quota.limits.max_concurrent}`} />
            <Stat label="memory" value={`${quota.limits.memory_mb.min}–${quota.limits.memory_mb.max} MB`} />
            <Stat label="timeout max" value={`${quota.limits.timeout_sec.max} s`} />
            <Stat label="log retention" value={`${quota.limits.log_retention_hours} h`} />
          </div>
        </>
      )}
      <AllSchedules />
    </section>
  );
}

/** Every function's and workflow's schedules, read-only: each links to where it is edited. */
function AllSchedules() {
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api.get("/api/v1/schedules?limit=100").then((p) => { setPage(p); setError(null); }, setError);
  useEffect(() => { load(); }, []);
  useInterval(load, 30000); // next runs move once a minute at most; paused while the tab is hidden
  const owner = (s) => s.workflow_id
    ? <a href={href("workflows", s.workflow_name || s.workflow_id)}>workflow {s.workflow_name}</a>
    : <a href={href("functions", s.function_name || s.function_id, "schedules")}>{s.function_name}</a>;
  return (
    <>
      <h2 id="schedules-title">Schedules</h2>
      <Notice>{error && errorText(error)}</Notice>
      {page && (
        <table class="list" aria-labelledby="schedules-title">
          {page.total > page.schedules.length && (
            <caption class="muted small">the first {page.schedules.length} of {page.total}</caption>
          )}
          <thead><tr><th>Of</th><th>Expression</th><th>When</th><th>On</th><th>Next run</th><th class="hide-narrow">Last run</th></tr></thead>
          <tbody>
            {page.schedules.map((s) => (
              <tr data-schedule={s.id} data-enabled={s.enabled ? "yes" : "no"}>
                <td>{owner(s)}</td>
                <td class="mono">{s.expression}</td>
                <td>{s.summary} <span class="muted">({s.timezone})</span></td>
                <td>{s.enabled ? "yes" : "no"}</td>
                <td data-fact="next-run"><When ts={s.next_run_at} /></td>
                <td class="hide-narrow" data-fact="last-run"><When ts={s.last_run_at} /></td>
              </tr>
            ))}
            {!page.schedules.length && <tr><td colSpan={6} class="empty">No schedules yet: add one on a function's or a workflow's page.</td></tr>}
          </tbody>
        </table>
      )}
    </>
  );
}
