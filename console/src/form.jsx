// The function form, for a new function and for editing one: source files in the editor or a
// binary upload, requirements, memory, timeout, environment, tags.
import { useEffect, useMemo, useState } from "preact/hooks";
import { api, fn, upload } from "./api.js";
import { Editor, Field, Notice } from "./components.jsx";
import { runtime as runtimeInfo } from "./runtimes.js";
import { UploadBox } from "./upload.jsx";
import { errorText } from "./util.js";

const MASK = "****";

// The server's limits (MAX_MEMORY_MB, MAX_TIMEOUT_SEC), asked once; until then its defaults.
let limitsLoaded;
const loadLimits = () => (limitsLoaded ||= api.get("/api/v1/quota").then((q) => q.limits, () => null));

export function initialForm(fnRecord, files) {
  return {
    name: fnRecord ? fnRecord.name : "",
    runtime: fnRecord ? fnRecord.runtime : "python",
    files: files || {},
    current: Object.keys(files || {})[0] || "",
    requirements: "",
    memory_mb: fnRecord ? String(fnRecord.memory_mb) : "",
    timeout_sec: fnRecord ? String(fnRecord.timeout_sec) : "",
    env: fnRecord ? Object.keys(fnRecord.env_vars).map((name) => ({ name, value: "", kept: true })) : [],
    envTouched: false,
    tags: fnRecord ? fnRecord.tags.join(", ") : "",
    description: fnRecord ? fnRecord.description : "",
    handler: "",
    artifact: null,
  };
}

function FileTabs({ form, set, errors }) {
  const names = Object.keys(form.files);
  const add = () => {
    const name = prompt("New file path (e.g. lib/util.py)");
    if (!name || form.files[name] !== undefined) return;
    set({ files: { ...form.files, [name]: "" }, current: name });
  };
  const rename = () => {
    const name = prompt("Rename to", form.current);
    if (!name || name === form.current || form.files[name] !== undefined) return;
    const files = {};
    for (const [k, v] of Object.entries(form.files)) files[k === form.current ? name : k] = v;
    set({ files, current: name });
  };
  const remove = () => {
    if (names.length < 2 || !confirm(`Remove ${form.current}?`)) return;
    const { [form.current]: _, ...files } = form.files;
    set({ files, current: Object.keys(files)[0] });
  };
  const marks = errors.filter((e) => e.file === form.current);
  return (
    <div class="files">
      <div class="tabs files-tabs" role="tablist" aria-label="source files">
        {names.map((n) => (
          <button type="button" role="tab" aria-selected={n === form.current ? "true" : "false"}
            class={`tab ${n === form.current ? "current" : ""} ${errors.some((e) => e.file === n) ? "has-error" : ""}`}
            onClick={() => set({ current: n })}>{n}</button>
        ))}
        <button type="button" class="tab add" onClick={add} aria-label="add a file">+ file</button>
        <div class="spacer" />
        <button type="button" class="link" onClick={rename} disabled={!form.current}>Rename</button>
        <button type="button" class="link" onClick={remove} disabled={names.length < 2}>Remove</button>
      </div>
      <Editor
        filename={form.current}
        value={form.files[form.current] || ""}
        onChange={(text) => set((f) => ({ files: { ...f.files, [f.current]: text } }))}
        errors={marks}
        label={`source of ${form.current}`}
        minHeight={340}
      />
      {marks.length > 0 && (
        <ul class="marks" aria-label="build errors">
          {errors.map((e) => (
            <li><button type="button" class="link" onClick={() => set({ current: e.file })}>{e.file}:{e.line}{e.column ? `:${e.column}` : ""}</button> {e.message}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function EnvVars({ form, set }) {
  const update = (i, patch) => set({ env: form.env.map((row, j) => (j === i ? { ...row, ...patch, kept: patch.value !== undefined ? false : row.kept } : row)), envTouched: true });
  return (
    <fieldset class="env">
      <legend>Environment variables</legend>
      {form.env.map((row, i) => (
        <div class="env-row">
          <input aria-label="variable name" placeholder="NAME" value={row.name} onInput={(e) => update(i, { name: e.currentTarget.value })} />
          <input type="password" aria-label={`value of ${row.name || "variable"}`} autocomplete="off"
            placeholder={row.kept ? `${MASK} (unchanged)` : "value"} value={row.value}
            onInput={(e) => update(i, { value: e.currentTarget.value })} />
          <button type="button" class="link" aria-label={`remove ${row.name}`} onClick={() => set({ env: form.env.filter((_, j) => j !== i), envTouched: true })}>×</button>
        </div>
      ))}
      <button type="button" onClick={() => set({ env: [...form.env, { name: "", value: "", kept: false }], envTouched: true })}>Add variable</button>
      <small class="hint">Saved values are never shown again; leave one empty to keep it, type to replace it.</small>
    </fieldset>
  );
}

/** What the API wants from the form: a JSON body, or multipart metadata + the file. */
function requestBody(form, original, creating) {
  const info = runtimeInfo(form.runtime);
  const body = {};
  if (creating) { body.name = form.name.trim(); body.runtime = form.runtime; }
  if (info.source) {
    if (creating || JSON.stringify(form.files) !== JSON.stringify(original.files)) body.files = form.files;
    if (form.handler.trim()) body.handler = form.handler.trim();
    const reqs = form.requirements.split("\n").map((s) => s.trim()).filter(Boolean);
    if (reqs.length || (!creating && form.requirements !== original.requirements)) body.requirements = reqs;
  }
  const num = (k) => {
    if (form[k] === original[k] && !creating) return;
    if (form[k] !== "") body[k] = Number(form[k]);
  };
  num("memory_mb");
  num("timeout_sec");
  if (form.envTouched || (creating && form.env.length)) {
    // A kept variable goes back masked: the API keeps its saved value (it never returns it).
    body.env_vars = Object.fromEntries(form.env.filter((r) => r.name.trim()).map((r) => [r.name.trim(), r.kept && !r.value ? MASK : r.value]));
  }
  const tags = form.tags.split(",").map((t) => t.trim()).filter(Boolean);
  if (creating ? tags.length : form.tags !== original.tags) body.tags = tags;
  if (creating ? form.description : form.description !== original.description) body.description = form.description;
  return body;
}

/**
 * The form; `onSaved(record, version|null)` after the API took it.
 * `fnRecord` and `files` describe the function being edited (absent when creating).
 */
export function FunctionForm({ fnRecord, files, errors = [], templatePicker, onSaved, initial, submitLabel }) {
  const creating = !fnRecord;
  const original = useMemo(() => initial || initialForm(fnRecord, files), [fnRecord && fnRecord.id, files]);
  const [form, setForm] = useState(original);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => setForm(original), [original]);
  const [limits, setLimits] = useState(null);
  useEffect(() => { loadLimits().then(setLimits); }, []);
  const set = (patch) => setForm((f) => ({ ...f, ...(typeof patch === "function" ? patch(f) : patch) }));
  const info = runtimeInfo(form.runtime);

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    let body;
    try { body = requestBody(form, original, creating); } catch (err) { setError(err.message); return; }
    const path = creating ? "/api/v1/functions" : fn(fnRecord.id);
    const method = creating ? "POST" : "PUT";
    setBusy(true);
    try {
      let record;
      if (!info.source && form.artifact) {
        setProgress(0);
        record = await upload(method, path, body, form.artifact, setProgress);
        setProgress(1);
      } else if (!info.source && creating) {
        throw new Error("choose a file to upload");
      } else {
        record = creating ? await api.post(path, body) : await api.put(path, body);
      }
      const made = creating || body.files || form.artifact || ["memory_mb", "timeout_sec", "env_vars", "requirements", "handler"].some((k) => k in body);
      onSaved(record, made ? record.latest_version : null);
    } catch (err) {
      setError(err.message ? errorText(err) : String(err));
      setProgress(null);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="fn-form" onSubmit={submit}
      onKeyDown={(e) => { if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); e.currentTarget.requestSubmit(); } }}
      aria-label={creating ? "new function" : `edit ${fnRecord.name}`}>
      {creating && templatePicker && templatePicker(form, set)}
      {info.source ? (
        <FileTabs form={form} set={set} errors={errors} />
      ) : (
        <UploadBox file={form.artifact} onFile={(artifact) => set({ artifact })} progress={progress} accept={info.accept} />
      )}
      <div class="grid config">
        {form.runtime === "python" && (
          <Field label="Requirements" hint="one PEP 508 line each; pure-Python wheels">
            <textarea rows={3} aria-label="requirements" value={form.requirements} placeholder="e.g. humanize==4.9.0"
              onInput={(e) => set({ requirements: e.currentTarget.value })} />
          </Field>
        )}
        {form.runtime === "javascript" && (
          <p class="hint">npm dependencies: add a <code>package.json</code> file with <code>dependencies</code>.</p>
        )}
        <Field label="Memory (MB)">
          <input type="number" min={info.memoryFloor || 16} max={limits ? limits.memory_mb.max : 4096} step="1" inputMode="numeric" aria-label="memory in MB" placeholder="default"
            value={form.memory_mb} onInput={(e) => set({ memory_mb: e.currentTarget.value })} />
        </Field>
        <Field label="Timeout (s)">
          <input type="number" min="0.1" max={limits ? limits.timeout_sec.max : 300} step="0.1" aria-label="timeout in seconds" placeholder="default"
            value={form.timeout_sec} onInput={(e) => set({ timeout_sec: e.currentTarget.value })} />
        </Field>
        <Field label="Tags" hint="comma-separated">
          <input aria-label="tags" value={form.tags} onInput={(e) => set({ tags: e.currentTarget.value })} />
        </Field>
        <Field label="Description">
          <input aria-label="description" value={form.description} onInput={(e) => set({ description: e.currentTarget.value })} />
        </Field>
        {info.source && (
          <Field label="Handler" hint={creating ? "module.function; empty: the runtime's default" : "module.function; empty: keep the current one"}>
            <input aria-label="handler" value={form.handler} placeholder={(fnRecord && fnRecord.handler) || info.handler || "default"} onInput={(e) => set({ handler: e.currentTarget.value })} />
          </Field>
        )}
      </div>
      <EnvVars form={form} set={set} />
      <Notice onClose={() => setError(null)}>{error}</Notice>
      <div class="row actions">
        <button class="primary" type="submit" disabled={busy || (creating && !form.name)}>
          {busy ? "Deploying…" : submitLabel || (creating ? "Create and deploy" : "Deploy")}
        </button>
        <small class="muted">Ctrl+S deploys too</small>
      </div>
    </form>
  );
}
