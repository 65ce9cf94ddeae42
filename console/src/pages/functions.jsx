// The functions list: the API's filters, pagination and bulk actions with per-item results.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Badge, Notice } from "../components.jsx";
import { href } from "../router.js";
import { RUNTIMES } from "../runtimes.js";
import { errorText, fmtAgo, fmtBytes, remember } from "../util.js";

const STATUSES = ["active", "creating", "failed", "offline"];

export function FunctionsPage() {
  const [filters, setFilters] = useState({ name: "", tags: "", runtime: "", status: "" });
  // What is in the two text boxes: theirs alone (a list arriving never rewrites them); the
  // filters take it a moment after the last key, or at once on Enter.
  const [typed, setTyped] = useState({ name: "", tags: "" });
  const [page, setPage] = useState({ limit: remember.get("pageSize", 20), offset: 0 });
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [bulk, setBulk] = useState(null);
  const [busy, setBusy] = useState(false);
  const [reload, setReload] = useState(0);

  const current = useRef(filters);
  current.current = filters;
  const applyTyped = (text) => {
    const name = text.name.trim(), tags = text.tags.replace(/\s+/g, "");
    const now = current.current;  // not this render's: a select may have changed since
    if (name === now.name && tags === now.tags) return;  // no refetch, keep the page
    setFilters({ ...now, name, tags });
    setPage((p) => ({ ...p, offset: 0 }));
  };
  useEffect(() => {
    const id = setTimeout(() => applyTyped(typed), 250);
    return () => clearTimeout(id);
  }, [typed]);

  // Only the newest request may fill the list: an older one answering late (a slow page
  // before the filter was typed) would show, and count, the wrong functions.
  const latest = useRef(0);
  useEffect(() => {
    const mine = ++latest.current;
    api.get("/api/v1/functions", { ...filters, ...page })
      .then((d) => { if (mine === latest.current) { setData(d); setError(null); } })
      .catch((e) => mine === latest.current && setError(e));
  }, [filters, page, reload]);

  const type = (k) => (e) => setTyped({ ...typed, [k]: e.currentTarget.value });
  const setFilter = (k) => (e) => { setFilters({ ...filters, [k]: e.currentTarget.value }); setPage({ ...page, offset: 0 }); };
  const toggle = (id) => {
    const next = new Set(selected);
    next.has(id) ? next.delete(id) : next.add(id);
    setSelected(next);
  };
  const shown = data ? data.functions : [];
  const allShown = shown.length > 0 && shown.every((f) => selected.has(f.id));
  const toggleAll = () => setSelected(allShown ? new Set() : new Set(shown.map((f) => f.id)));
  const names = Object.fromEntries(shown.map((f) => [f.id, f.name]));

  const runBulk = async (action) => {
    const ids = [...selected];
    if (action === "delete" && !confirm(`Delete ${ids.length} function(s)? This cannot be undone.`)) return;
    setBusy(true);
    try {
      const result = action === "delete"
        ? await api.post("/api/v1/functions/bulk-delete", { ids })
        : await api.post("/api/v1/functions/bulk-update", { ids, status: action });
      setBulk({ action, ...result, names: { ...names } });
      setSelected(new Set(result.failed.map((f) => f.id)));
      setReload((n) => n + 1);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const { limit, offset } = page;
  const total = data ? data.total : 0;
  return (
    <section aria-labelledby="fn-title">
      <div class="row head">
        <h1 id="fn-title">Functions</h1>
        <span class="muted">{data ? `${total} in all` : "loading…"}</span>
        <div class="spacer" />
        <a class="button primary" href={href("new")}>New function</a>
      </div>
      <form class="filters" role="search" onSubmit={(e) => { e.preventDefault(); applyTyped(typed); }}>
        <input type="search" placeholder="Search names" aria-label="search names" value={typed.name} onInput={type("name")} />
        <input placeholder="tags: a,b" aria-label="tags (all must match)" value={typed.tags} onInput={type("tags")} />
        <select aria-label="runtime" value={filters.runtime} onChange={setFilter("runtime")}>
          <option value="">All runtimes</option>
          {RUNTIMES.map((r) => <option value={r.name}>{r.label}</option>)}
        </select>
        <select aria-label="status" value={filters.status} onChange={setFilter("status")}>
          <option value="">Any status</option>
          {STATUSES.map((s) => <option value={s}>{s}</option>)}
        </select>
      </form>
      <Notice onClose={() => setError(null)}>{error && errorText(error)}</Notice>
      {selected.size > 0 && (
        <div class="bulkbar" role="toolbar" aria-label="bulk actions">
          <strong>{selected.size} selected</strong>
          <button disabled={busy} onClick={() => runBulk("active")}>Set active</button>
          <button disabled={busy} onClick={() => runBulk("offline")}>Set offline</button>
          <button disabled={busy} class="danger" onClick={() => runBulk("delete")}>Delete</button>
          <button class="link" onClick={() => setSelected(new Set())}>Clear</button>
        </div>
      )}
      {bulk && (
        <div class="notice info bulk-result" role="status" aria-label="bulk result">
          <div>
            <strong>{bulk.action === "delete" ? "Delete" : `Set ${bulk.action}`}:</strong>{" "}
            {bulk.success.length} succeeded, {bulk.failed.length} failed
            <ul>
              {bulk.success.map((id) => <li class="ok" data-id={id}>✓ {bulk.names[id] || id}</li>)}
              {bulk.failed.map((f) => <li class="bad" data-id={f.id}>✗ {bulk.names[f.id] || f.id}: {errorText(f.error)}</li>)}
            </ul>
          </div>
          <button class="link" aria-label="dismiss" onClick={() => setBulk(null)}>×</button>
        </div>
      )}
      <div class="table-wrap">
        <table class="list">
          <thead>
            <tr>
              <th><input type="checkbox" aria-label="select all shown" checked={allShown} onChange={toggleAll} /></th>
              <th>Name</th><th>Runtime</th><th>Status</th><th class="hide-narrow">Version</th>
              <th class="hide-narrow">Last build</th><th class="hide-narrow">Size</th><th class="hide-narrow">Tags</th><th class="hide-narrow">Updated</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((f) => (
              <tr key={f.id} data-name={f.name}>
                <td><input type="checkbox" aria-label={`select ${f.name}`} checked={selected.has(f.id)} onChange={() => toggle(f.id)} /></td>
                <td><a href={href("functions", f.name)}>{f.name}</a>{f.description && <div class="muted small">{f.description}</div>}</td>
                <td>{f.runtime}</td>
                <td><Badge status={f.status} /></td>
                <td class="hide-narrow">{f.active_version ?? "—"}{f.latest_version !== f.active_version && <span class="muted"> / {f.latest_version}</span>}</td>
                <td class="hide-narrow">{f.latest_build ? <Badge status={f.latest_build.status} title={f.latest_build.error || ""} /> : "—"}</td>
                <td class="hide-narrow">{fmtBytes(f.code_size)}</td>
                <td class="hide-narrow">{f.tags.map((t) => <span class="tag">{t}</span>)}</td>
                <td class="hide-narrow">{fmtAgo(f.updated_at)}</td>
              </tr>
            ))}
            {data && shown.length === 0 && (
              <tr><td colSpan={9} class="empty">No functions match. <a href={href("new")}>Create one</a>.</td></tr>
            )}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="pages">
        <button disabled={offset === 0} onClick={() => setPage({ limit, offset: Math.max(0, offset - limit) })}>← Previous</button>
        <span>{total ? `${offset + 1}–${Math.min(offset + limit, total)} of ${total}` : "0 of 0"}</span>
        <button disabled={offset + limit >= total} onClick={() => setPage({ limit, offset: offset + limit })}>Next →</button>
        <select aria-label="page size" value={limit} onChange={(e) => { const n = Number(e.currentTarget.value); remember.set("pageSize", n); setPage({ limit: n, offset: 0 }); }}>
          {[10, 20, 50, 100].map((n) => <option value={n}>{n} per page</option>)}
        </select>
      </nav>
    </section>
  );
}
