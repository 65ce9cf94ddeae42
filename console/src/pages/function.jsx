// One function: its code and builds, the test panel, logs, observability, settings.
import { useEffect, useState } from "preact/hooks";
import { api, fn } from "../api.js";
import { Badge, Notice, Tabs } from "../components.jsx";
import { BuildWatch, errorsFromLog } from "../build.jsx";
import { FunctionForm } from "../form.jsx";
import { go, href, parseHash } from "../router.js";
import { errorText, fmtAgo, fmtBytes } from "../util.js";
import { runtime as runtimeInfo } from "../runtimes.js";
import { TestPanel } from "../test-panel.jsx";
import { LogsPanel } from "../logs.jsx";
import { SettingsPanel } from "../settings.jsx";
import { ObservePanel } from "../observe.jsx";
import { VersionsPanel } from "../versions.jsx";
import { SchedulesPanel } from "../schedules.jsx";

const TABS = [["code", "Code"], ["test", "Test"], ["logs", "Logs"], ["observe", "Observe"], ["versions", "Versions"], ["schedules", "Schedules"], ["settings", "Settings"]];

function CodeTab({ record, onChange }) {
  const [files, setFiles] = useState(null);
  const [watch, setWatch] = useState(() => Number(parseHash().query.build) || null);
  const [errors, setErrors] = useState([]);
  const [error, setError] = useState(null);
  const [binary, setBinary] = useState(null);

  useEffect(() => {
    let gone = false;
    if (!runtimeInfo(record.runtime).source) { setBinary(true); setFiles({}); return undefined; }
    api.get(`${fn(record.id)}/code`).then(
      (data) => { if (!gone) typeof data === "object" && data && data.files ? setFiles(data.files) : (setBinary(true), setFiles({})); },
      (e) => !gone && (e.status === 404 ? setFiles({}) : setError(e)),
    );
    return () => { gone = true; };
  }, [record.id]);

  const ended = (build) => {
    onChange();
    if (build.status === "failed") {
      const structured = Array.isArray(build.errors) && build.errors.length ? build.errors : null;
      setErrors(structured || errorsFromLog(build.log || "", Object.keys(files || {})));
    } else {
      setErrors([]);
    }
  };
  return (
    <div class="code-tab">
      <Notice>{error && errorText(error)}</Notice>
      {binary && <p class="muted">This function runs an uploaded binary ({fmtBytes(record.code_size)}). Upload a new one to deploy a new version.</p>}
      {files === null ? <p class="muted">Loading code…</p> : (
        <FunctionForm
          fnRecord={record}
          files={files}
          errors={errors}
          onSaved={(saved, version) => {
            onChange(saved);
            if (version) { setErrors([]); setWatch(version); }
          }}
        />
      )}
      {watch && <BuildWatch ref_={record.id} version={watch} key={watch} onEnd={ended} />}
    </div>
  );
}

export function FunctionPage({ ref_, tab }) {
  const [record, setRecord] = useState(null);
  const [error, setError] = useState(null);
  const reload = (fresh) => {
    if (fresh && fresh.id) { setRecord(fresh); return; }
    api.get(fn(ref_)).then(setRecord, setError);
  };
  useEffect(() => reload(), [ref_]);
  if (error) {
    return <section><h1>{ref_}</h1><Notice>{error.status === 404 ? `No function named ${ref_}.` : errorText(error)}</Notice><a href={href("functions")}>← All functions</a></section>;
  }
  if (!record) return <p class="muted">Loading…</p>;
  const panel = {
    code: <CodeTab record={record} onChange={reload} />,
    test: <TestPanel record={record} />,
    logs: <LogsPanel record={record} />,
    observe: <ObservePanel record={record} />,
    versions: <VersionsPanel record={record} onChange={reload} />,
    schedules: <SchedulesPanel record={record} />,
    settings: <SettingsPanel record={record} onChange={reload} />,
  }[tab] || null;
  return (
    <section aria-labelledby="fn-name">
      <div class="row head">
        <a href={href("functions")} class="muted">Functions /</a>
        <h1 id="fn-name">{record.name}</h1>
        <Badge status={record.status} />
        <span class="muted">{record.runtime}{record.runtime_version ? ` · ${record.runtime_version}` : ""}</span>
        <div class="spacer" />
        <span class="muted small">v{record.active_version ?? "—"} serving · latest v{record.latest_version}
          {record.latest_build && <> (<span data-latest-build={record.latest_build.status}>{record.latest_build.status}</span>)</>} · updated {fmtAgo(record.updated_at)}</span>
      </div>
      {record.latest_build && record.latest_build.status === "failed" && record.active_version && (
        <Notice kind="warn">Version {record.latest_build.version} failed to build; version {record.active_version} still serves.</Notice>
      )}
      <Tabs label="function sections" tabs={TABS} current={tab} onSelect={(id) => go("functions", record.name, id)} />
      <div class="panel" role="tabpanel">{panel}</div>
    </section>
  );
}
