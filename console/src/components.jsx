// Pieces several pages share: the editor wrapper, status badges, notices, tabs.
import { useEffect, useRef, useState } from "preact/hooks";

const NO_ERRORS = [];
let loading;
const loadCodeMirror = () => (loading ||= import("./codemirror.js"));

/** A CodeMirror editor; `errors` marks lines ([{line, column?, message}]). */
export function Editor({ value, onChange, filename, errors, label, readOnly, minHeight = 260 }) {
  const host = useRef(null);
  const editor = useRef(null);
  const latest = useRef(onChange);
  latest.current = onChange;
  // What the user typed, as reported to the page: when `value` comes back as one of these it
  // is the page catching up (maybe a keystroke late), not a new document to load.
  const typed = useRef(new Set());
  const [ready, setReady] = useState(false);

  useEffect(() => {
    let gone = false;
    loadCodeMirror().then(({ createEditor }) => {
      if (gone) return;
      editor.current = createEditor(host.current, {
        doc: value || "",
        label,
        readOnly,
        onChange: (text) => { typed.current.add(text); latest.current && latest.current(text); },
      });
      setReady(true);
    });
    const onTheme = () => editor.current && editor.current.setTheme();
    addEventListener("nimbus-theme", onTheme);
    return () => { gone = true; removeEventListener("nimbus-theme", onTheme); editor.current && editor.current.destroy(); };
  }, []);
  useEffect(() => {
    if (!ready) return;
    if (typed.current.has(value)) {
      if (value === editor.current.view.state.doc.toString()) typed.current.clear();
      return;
    }
    typed.current.clear();
    editor.current.setDoc(value || "");
  }, [ready, value]);
  useEffect(() => { if (ready) editor.current.setLanguage(filename || ""); }, [ready, filename]);
  useEffect(() => { if (ready) editor.current.mark(errors || NO_ERRORS); }, [ready, errors, value]);
  return <div class="editor" ref={host} data-ready={ready ? "yes" : "no"} data-filename={filename} style={{ minHeight: `${minHeight}px` }} />;
}

const STATUS_CLASS = {
  active: "ok", ready: "ok", succeeded: "ok",
  creating: "busy", queued: "busy", building: "busy", running: "busy",
  failed: "bad", timed_out: "bad", build_failed: "bad",
  offline: "off", aborted: "off",
  progressing: "busy", promoted: "ok", rolled_back: "bad",
};

export const Badge = ({ status, title }) => (
  <span class={`badge ${STATUS_CLASS[status] || ""}`} title={title} data-status={status}>{status}</span>
);

export const Notice = ({ kind = "error", children, onClose }) =>
  children ? (
    <div class={`notice ${kind}`} role={kind === "error" ? "alert" : "status"}>
      <div>{children}</div>
      {onClose && <button class="link" onClick={onClose} aria-label="dismiss">×</button>}
    </div>
  ) : null;

export function Tabs({ tabs, current, onSelect, label }) {
  return (
    <div class="tabs" role="tablist" aria-label={label}>
      {tabs.map(([id, text]) => (
        <button
          key={id}
          role="tab"
          aria-selected={current === id ? "true" : "false"}
          class={current === id ? "tab current" : "tab"}
          onClick={() => onSelect(id)}
        >{text}</button>
      ))}
    </div>
  );
}

export const Field = ({ label, hint, children }) => (
  <label class="field"><span class="label">{label}</span>{children}{hint && <small class="hint">{hint}</small>}</label>
);

/** Repeat `fn` every `ms` while mounted (and the tab is visible). */
export function useInterval(fn, ms, deps = []) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!ms) return undefined;
    const id = setInterval(() => document.visibilityState === "visible" && saved.current(), ms);
    return () => clearInterval(id);
  }, [ms, ...deps]);
}

/** `value`, once it has stayed the same for `ms` (what a search box filters by). */
export function useDebounced(value, ms = 250) {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return settled;
}
