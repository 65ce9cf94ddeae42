// The console's shell: the key screen, the 401 screen, navigation and the pages.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { checkKey, clearKey, getKey, onUnauthorized, setKey } from "./api.js";
import { href, useRoute } from "./router.js";
import { lazy } from "./lazy.jsx";
import { remember } from "./util.js";

const FunctionsPage = lazy(() => import("./pages/functions.jsx").then((m) => m.FunctionsPage));
const CreatePage = lazy(() => import("./pages/create.jsx").then((m) => m.CreatePage));
const FunctionPage = lazy(() => import("./pages/function.jsx").then((m) => m.FunctionPage));
const SystemPage = lazy(() => import("./pages/system.jsx").then((m) => m.SystemPage));
const WorkflowsPage = lazy(() => import("./pages/workflows.jsx").then((m) => m.WorkflowsPage));
const WorkflowPage = lazy(() => import("./pages/workflow.jsx").then((m) => m.WorkflowPage));

function applyTheme(theme) {
  const dark = theme === "dark" || (theme === "auto" && matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  dispatchEvent(new Event("nimbus-theme"));
}

function KeyScreen({ refused, onKey }) {
  const [key, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (await checkKey(key.trim())) onKey(key.trim());
      else onKey(null);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="center">
      <form class="card login" onSubmit={submit} aria-labelledby="login-title">
        {refused ? (
          <div class="unauthorized" role="alert" data-screen="401">
            <div class="big">401</div>
            <h1 id="login-title">That API key was refused</h1>
            <p>The server answered <code>401 unauthorized</code>. Check the key — <code>nimbus serve</code> prints it
              at first start and keeps it in <code>DATA_DIR/api_key</code> (or <code>NIMBUS_API_KEY</code>).</p>
          </div>
        ) : (
          <>
            <h1 id="login-title">Nimbus console</h1>
            <p>Enter your API key. It is kept for this browser tab only and sent as
              <code> Authorization: Bearer …</code> to the REST API.</p>
          </>
        )}
        <label class="field"><span class="label">API key</span>
          <input type="password" name="api-key" autocomplete="current-password" required autofocus
            value={key} onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
        {error && <p class="notice error" role="alert">{error}</p>}
        <button class="primary" type="submit" disabled={busy || !key.trim()}>{busy ? "Checking…" : "Open console"}</button>
      </form>
    </main>
  );
}

function Shell({ onSignOut, theme, onTheme }) {
  const { parts, query } = useRoute();
  const [section = "functions", ref, tab] = parts;
  let page;
  if (section === "new") page = <CreatePage runtime={query.runtime} />;
  else if (section === "functions" && ref) page = <FunctionPage ref_={ref} tab={tab || "code"} key={ref} />;
  else if (section === "system") page = <SystemPage />;
  else if (section === "workflows" && ref) page = <WorkflowPage ref_={ref} execution={tab === "executions" ? parts[3] : undefined} key={ref} />;
  else if (section === "workflows") page = <WorkflowsPage creating={query.new === "1"} />;
  else page = <FunctionsPage />;
  const nav = (id, text, link) => (
    <a href={link} aria-current={section === id ? "page" : undefined}>{text}</a>
  );
  return (
    <>
      <header class="top">
        <a class="brand" href={href("functions")}>☁ Nimbus</a>
        <nav aria-label="main">
          {nav("functions", "Functions", href("functions"))}
          {nav("new", "New function", href("new"))}
          {nav("workflows", "Workflows", href("workflows"))}
          {nav("system", "System", href("system"))}
        </nav>
        <div class="spacer" />
        <select aria-label="theme" value={theme} onChange={(e) => onTheme(e.currentTarget.value)}>
          <option value="auto">Auto theme</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
        <button class="link" onClick={onSignOut}>Sign out</button>
      </header>
      <main class="page">{page}</main>
    </>
  );
}

function App() {
  // "login" | "refused" | "in"
  const [state, setState] = useState(getKey() ? "in" : "login");
  const [theme, setTheme] = useState(remember.get("theme", "auto"));
  useEffect(() => onUnauthorized(() => { clearKey(); setState("refused"); }), []);
  useEffect(() => {
    applyTheme(theme);
    remember.set("theme", theme);
    const media = matchMedia("(prefers-color-scheme: dark)");
    const onChange = () => applyTheme(theme);
    media.addEventListener("change", onChange);
    return () => media.removeEventListener("change", onChange);
  }, [theme]);
  if (state !== "in") {
    return (
      <KeyScreen
        refused={state === "refused"}
        onKey={(key) => {
          if (key) { setKey(key); setState("in"); } else setState("refused");
        }}
      />
    );
  }
  return <Shell theme={theme} onTheme={setTheme} onSignOut={() => { clearKey(); setState("login"); }} />;
}

render(<App />, document.getElementById("app"));
performance.mark("nimbus-first-render");
