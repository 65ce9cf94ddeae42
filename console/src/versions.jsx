// Versions and aliases: the version list with rollback, a line diff of two versions' source,
// aliases with a weight slider for a second version, and their automatic canary (canary.jsx).
import { useEffect, useState } from "preact/hooks";
import { api, fn } from "./api.js";
import { Badge, Notice, useInterval } from "./components.jsx";
import { CanaryForm, CanaryProgress } from "./canary.jsx";
import { errorText, fmtAgo, fmtBytes } from "./util.js";

/** Line diff (longest common subsequence): [{op: " " | "-" | "+", line}]. */
export function diffLines(before, after) {
  const a = before.split("\n"), b = after.split("\n");
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push({ op: " ", line: a[i] }); i++; j++; }
    else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) { out.push({ op: "-", line: a[i] }); i++; }
    else { out.push({ op: "+", line: b[j] }); j++; }
  }
  return out;
}

function Diff({ record, from, to }) {
  const [code, setCode] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const get = (v) => api.get(`${fn(record.id)}/code`, { version: v }).then((d) => (d && d.files) || {});
    Promise.all([get(from), get(to)]).then(setCode, setError);
  }, [record.id, from, to]);
  if (error) return <Notice>{errorText(error)}</Notice>;
  if (!code) return <p class="muted">Loading the two versions…</p>;
  const [a, b] = code;
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return (
    <section class="card diff" aria-label={`diff of version ${from} and version ${to}`}>
      <strong>Version {from} → version {to}</strong>
      {names.map((name) => {
        const lines = diffLines(a[name] ?? "", b[name] ?? "");
        const changed = lines.filter((l) => l.op !== " ").length;
        return (
          <div class="diff-file">
            <div class="muted">{name} {a[name] === undefined ? "(added)" : b[name] === undefined ? "(removed)" : changed ? `(${changed} line(s) changed)` : "(unchanged)"}</div>
            {changed > 0 && (
              <pre class="log">{lines.map((l) => <div class={l.op === "+" ? "add" : l.op === "-" ? "del" : ""}>{l.op} {l.line}</div>)}</pre>
            )}
          </div>
        );
      })}
    </section>
  );
}

function AliasRow({ record, alias, versions, onChange }) {
  const [version, setVersion] = useState(alias.version);
  const entries = Object.entries(alias.routing || {});
  const [second, setSecond] = useState(entries.length ? Number(entries[0][0]) : "");
  const [weight, setWeight] = useState(entries.length ? entries[0][1] : 0);
  const [error, setError] = useState(null);
  const save = async () => {
    setError(null);
    const routing = second && Number(second) !== Number(version) && weight > 0 ? { [second]: weight } : {};
    try { onChange(await api.put(`${fn(record.id)}/aliases/${alias.name}`, { version: Number(version), routing })); }
    catch (e) { setError(e); }
  };
  const ready = versions.filter((v) => v.status === "ready");
  const [starting, setStarting] = useState(false);
  const running = alias.canary && alias.canary.status === "progressing";
  return (
    <>
    <tr data-alias={alias.name}>
      <td><strong>{alias.name}</strong></td>
      <td>
        <select aria-label={`${alias.name} version`} value={version} onChange={(e) => setVersion(e.currentTarget.value)}>
          {ready.map((v) => <option value={v.version}>v{v.version}</option>)}
        </select>
        <span class="muted small"> {100 - (second ? weight : 0)}%</span>
      </td>
      <td>
        <select aria-label={`${alias.name} second version`} value={second} onChange={(e) => setSecond(e.currentTarget.value)}>
          <option value="">none</option>
          {ready.filter((v) => v.version !== Number(version)).map((v) => <option value={v.version}>v{v.version}</option>)}
        </select>
        <input type="range" min="0" max="100" step="5" value={weight} disabled={!second}
          aria-label={`${alias.name} weight of the second version`} onInput={(e) => setWeight(Number(e.currentTarget.value))} />
        <output data-fact="weight">{second ? `${weight}%` : "—"}</output>
      </td>
      <td data-fact="canary"><CanaryProgress record={record} alias={alias} onChange={onChange} /></td>
      <td>
        <button onClick={save} disabled={running} title={running ? "the canary moves the weights" : ""}>Save</button>{" "}
        {!running && <button aria-expanded={starting ? "true" : "false"} onClick={() => setStarting(!starting)}>Canary…</button>}
        {error && <Notice>{errorText(error)}</Notice>}
      </td>
    </tr>
    {starting && !running && (
      <tr class="canary-row"><td colSpan={5}>
        <CanaryForm record={record} alias={alias} versions={versions} onCancel={() => setStarting(false)}
          onDone={(view) => { setStarting(false); onChange(view); }} />
      </td></tr>
    )}
    </>
  );
}

export function VersionsPanel({ record, onChange }) {
  const [versions, setVersions] = useState(null);
  const [aliases, setAliases] = useState([]);
  const [pick, setPick] = useState([]);
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const [newAlias, setNewAlias] = useState("");
  const load = () => Promise.all([
    api.get(`${fn(record.id)}/versions`, { limit: 100 }),
    api.get(`${fn(record.id)}/aliases`),
  ]).then(([v, a]) => { setVersions(v.versions); setAliases(a.aliases); }, setError);
  useEffect(() => { load(); }, [record.id, record.active_version]);
  // A canary moves on its own: follow it while one runs.
  useInterval(load, aliases.some((a) => a.canary && a.canary.status === "progressing") ? 3000 : 0);

  const rollback = async (v) => {
    setError(null);
    try {
      await api.post(`${fn(record.id)}/versions/${v}/rollback`);
      setNote(`Version ${v} serves now.`);
      onChange();
      load();
    } catch (e) { setError(e); }
  };
  const toggle = (v) => setPick((p) => (p.includes(v) ? p.filter((x) => x !== v) : [...p, v].slice(-2)));
  const create = async (e) => {
    e.preventDefault();
    try {
      await api.post(`${fn(record.id)}/aliases`, { name: newAlias.trim(), version: record.active_version });
      setNewAlias("");
      load();
    } catch (err) { setError(err); }
  };
  if (!versions) return <p class="muted">Loading versions…</p>;
  const [from, to] = [...pick].sort((a, b) => a - b);
  return (
    <div class="versions">
      <Notice onClose={() => setError(null)}>{error && errorText(error)}</Notice>
      <Notice kind="info" onClose={() => setNote(null)}>{note}</Notice>
      <table class="list" aria-label="versions">
        <thead><tr><th>Compare</th><th>Version</th><th>Build</th><th class="hide-narrow">Created</th><th class="hide-narrow">Size</th><th>Aliases</th><th /></tr></thead>
        <tbody>
          {versions.map((v) => (
            <tr data-version={v.version} data-serving={v.active ? "yes" : "no"}>
              <td><input type="checkbox" aria-label={`compare version ${v.version}`} checked={pick.includes(v.version)} onChange={() => toggle(v.version)} /></td>
              <td>v{v.version} {v.active && <span class="badge ok">serving</span>}</td>
              <td><Badge status={v.status} title={v.error || ""} /></td>
              <td class="hide-narrow">{fmtAgo(v.created_at)}</td>
              <td class="hide-narrow">{fmtBytes(v.code_size)}</td>
              <td>{(v.aliases || []).map((a) => <span class="tag">{a}</span>)}</td>
              <td>{!v.active && v.status === "ready" && <button onClick={() => rollback(v.version)}>{v.version > (record.active_version ?? 0) ? "Serve" : "Roll back to"} v{v.version}</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {pick.length === 2 ? <Diff record={record} from={from} to={to} key={`${from}-${to}`} /> : <p class="muted">Tick two versions to compare their source.</p>}
      <h2>Aliases</h2>
      <table class="list" aria-label="aliases">
        <thead><tr><th>Alias</th><th>Version</th><th>Second version and its weight</th><th>Canary</th><th /></tr></thead>
        <tbody>
          {aliases.map((a) => <AliasRow key={`${a.name}-${a.updated_at}`} record={record} alias={a} versions={versions} onChange={() => load()} />)}
          {!aliases.length && <tr><td colSpan={5} class="empty">No aliases yet.</td></tr>}
        </tbody>
      </table>
      <form class="row" onSubmit={create}>
        <input aria-label="new alias name" placeholder="e.g. prod" value={newAlias} onInput={(e) => setNewAlias(e.currentTarget.value)} required />
        <button type="submit" disabled={!record.active_version}>Add alias at v{record.active_version ?? "—"}</button>
      </form>
    </div>
  );
}
