// Watching a build: queued → building → ready | failed, with the log as it grows, and the
// errors it names as editor marks ([{file, line, column?, message}]).
import { useEffect, useRef, useState } from "preact/hooks";
import { api, fn } from "./api.js";
import { Badge } from "./components.jsx";
import { fmtMs } from "./util.js";

const STEPS = ["queued", "building", "ready"];

// Until the server's builds carry structured `errors`, the common compiler shapes are read
// from the log: Python's `File "x.py", line N`, and `file:line[:col]: error: …` (C, Go, Rust,
// esbuild).
const PY_FRAME = /File "(?:[^"]*\/)?([^"/]+)", line (\d+)/g;
const COLON = /(?:^|\s|\/)([\w.\-/]+\.(?:c|h|go|rs|js|mjs|cjs|ts|py)):(\d+)(?::(\d+))?:?\s*(?:error:?\s*)?(.*)$/gm;

export function errorsFromLog(log, files) {
  const known = (name) => files.includes(name) ? name : files.find((f) => f.endsWith(`/${name}`) || name.endsWith(`/${f}`));
  const found = [];
  const lastLine = log.trim().split("\n").filter(Boolean).pop() || "build failed";
  for (const m of log.matchAll(PY_FRAME)) {
    const file = known(m[1]);
    if (file) found.push({ file, line: Number(m[2]), message: lastLine });
  }
  for (const m of log.matchAll(COLON)) {
    const file = known(m[1]);
    if (file) found.push({ file, line: Number(m[2]), column: m[3] ? Number(m[3]) : undefined, message: m[4] || lastLine });
  }
  const seen = new Set();
  return found.filter((e) => { const k = `${e.file}:${e.line}`; return seen.has(k) ? false : (seen.add(k), true); });
}

/** Poll the build of `version` until it ends; `onEnd(build)` once. */
export function BuildWatch({ ref_, version, onEnd }) {
  const [build, setBuild] = useState(null);
  const [error, setError] = useState(null);
  const logRef = useRef(null);
  const ended = useRef(false);
  useEffect(() => {
    let gone = false;
    let timer;
    ended.current = false;
    const started = performance.now();
    const poll = async () => {
      try {
        const b = await api.get(`${fn(ref_)}/build`, { version });
        if (gone) return;
        b.watchedMs = performance.now() - started;
        setBuild(b);
        if (b.status === "ready" || b.status === "failed") {
          if (!ended.current) { ended.current = true; onEnd && onEnd(b); }
          return;
        }
      } catch (e) {
        if (gone) return;
        setError(e.message);
      }
      timer = setTimeout(poll, 400);
    };
    poll();
    return () => { gone = true; clearTimeout(timer); };
  }, [ref_, version]);
  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [build && build.log]);

  const status = build ? build.status : "queued";
  const reached = status === "failed" ? 1 : STEPS.indexOf(status);
  return (
    <section class="build card" aria-label={`build of version ${version}`} data-build-status={status}>
      <div class="row">
        <strong>Build of version {version}</strong>
        <ol class="steps">
          {STEPS.map((s, i) => {
            const label = s === "ready" && status === "failed" ? "failed" : s;
            const cls = i < reached || (i === reached && (s === "ready")) ? "done" : i === reached ? "now" : "";
            return <li class={`${cls} ${label === "failed" ? "bad" : ""}`}>{label}</li>;
          })}
        </ol>
        <div class="spacer" />
        <Badge status={status} />
        {build && build.finished_at && build.started_at && (
          <span class="muted">{fmtMs(new Date(build.finished_at) - new Date(build.started_at))}</span>
        )}
      </div>
      {build && build.error && <p class="notice error" role="alert">{build.error}</p>}
      {error && <p class="notice error">{error}</p>}
      <pre class="log" ref={logRef} aria-label="build log" tabIndex={0}>{build ? build.log || "(no output yet)" : "…"}</pre>
    </section>
  );
}
