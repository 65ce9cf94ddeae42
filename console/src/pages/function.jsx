// One function: its code and builds, the test panel, logs, observability, settings (each tab
// a module of its own, fetched the first time it is opened).
import { useEffect, useState } from "preact/hooks";
import { api, fn } from "../api.js";
import { Badge, Notice, Tabs } from "../components.jsx";
import { lazy } from "../lazy.jsx";
import { go, href } from "../router.js";
import { errorText, fmtAgo } from "../util.js";

const CodeTab = lazy(() => import("./code-tab.jsx").then((m) => m.CodeTab));
const TestPanel = lazy(() => import("../test-panel.jsx").then((m) => m.TestPanel));
const LogsPanel = lazy(() => import("../logs.jsx").then((m) => m.LogsPanel));
const ObservePanel = lazy(() => import("../observe.jsx").then((m) => m.ObservePanel));
const VersionsPanel = lazy(() => import("../versions.jsx").then((m) => m.VersionsPanel));
const SchedulesPanel = lazy(() => import("../schedules.jsx").then((m) => m.SchedulesPanel));
const SettingsPanel = lazy(() => import("../settings.jsx").then((m) => m.SettingsPanel));

const TABS = [["code", "Code"], ["test", "Test"], ["logs", "Logs"], ["observe", "Observe"], ["versions", "Versions"], ["schedules", "Schedules"], ["settings", "Settings"]];

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
        <span class="muted small">{record.active_version ? `v${record.active_version}` : "nothing"} serving · latest v{record.latest_version}
          {record.latest_build && <> (<span data-latest-build={record.latest_build.status}>{record.latest_build.status}</span>)</>} · updated {fmtAgo(record.updated_at)}</span>
      </div>
      {record.latest_build && record.latest_build.status === "failed" && (record.active_version ? (
        <Notice kind="warn">Version {record.latest_build.version} failed to build; version {record.active_version} still serves.</Notice>
      ) : (
        <Notice kind="warn">Version {record.latest_build.version} failed to build, and no version serves yet: fix the code and deploy.</Notice>
      ))}
      <Tabs label="function sections" tabs={TABS} current={tab} onSelect={(id) => go("functions", record.name, id)} />
      <div class="panel" role="tabpanel">{panel}</div>
    </section>
  );
}
