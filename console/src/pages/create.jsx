// A new function: pick a runtime, start from its example, deploy.
import { useEffect, useState } from "preact/hooks";
import { Field } from "../components.jsx";
import { FunctionForm, initialForm } from "../form.jsx";
import { href } from "../router.js";
import { loadRuntimes, runtime as runtimeInfo, RUNTIMES } from "../runtimes.js";
import { loadTemplates, SAMPLE_EVENTS } from "../templates.js";
import { remember } from "../util.js";

export function CreatePage({ runtime = "python" }) {
  const [templates, setTemplates] = useState(null);
  const [runtimes, setRuntimes] = useState(RUNTIMES);
  const [chosen, setChosen] = useState({ runtime, template: null });
  // The form starts over on another runtime or template; the name typed so far is kept.
  const [name, setName] = useState("");
  useEffect(() => { loadTemplates().then(setTemplates); loadRuntimes().then(setRuntimes); }, []);

  // The form starts from the runtime's first example (several: pick in the list).
  const forRuntime = (templates && templates[chosen.runtime]) || [];
  const template = forRuntime.find((t) => t.name === chosen.template) || forRuntime[0];
  const initial = {
    ...initialForm(null, template ? template.files : runtimeInfo(chosen.runtime).source ? { [`handler.${runtimeInfo(chosen.runtime).extension}`]: "" } : {}),
    runtime: chosen.runtime,
    name,
    memory_mb: template && template.settings.memory_mb ? String(template.settings.memory_mb) : "",
    timeout_sec: template && template.settings.timeout_sec ? String(template.settings.timeout_sec) : "",
    handler: (template && template.settings.handler) || "",
  };

  const picker = (form, set) => (
    <div class="grid create-head">
      <Field label="Name" hint="a DNS label: a-z, 0-9 and '-'">
        <input aria-label="function name" required pattern="[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?" value={form.name}
          onInput={(e) => { set({ name: e.currentTarget.value }); setName(e.currentTarget.value); }} autofocus />
      </Field>
      <Field label="Runtime">
        <select aria-label="runtime" value={chosen.runtime} onChange={(e) => setChosen({ runtime: e.currentTarget.value, template: null })}>
          {runtimes.map((r) => <option value={r.name}>{r.label}</option>)}
        </select>
      </Field>
      {forRuntime.length > 0 && (
        <Field label="Template" hint="from examples/">
          <select aria-label="template" value={template && template.name} onChange={(e) => setChosen({ ...chosen, template: e.currentTarget.value })}>
            {forRuntime.map((t) => <option value={t.name}>{t.name}</option>)}
          </select>
        </Field>
      )}
    </div>
  );

  const saved = (record, version) => {
    const sample = template && SAMPLE_EVENTS[template.name];
    if (sample) remember.set(`event.${record.name}`, JSON.stringify(sample, null, 2));
    location.hash = `${href("functions", record.name, "code")}?build=${version}`;
  };

  return (
    <section aria-labelledby="new-title">
      <h1 id="new-title">New function</h1>
      {templates === null ? <p class="muted">Loading templates…</p> : (
        <FunctionForm key={`${chosen.runtime}/${template && template.name}`} initial={initial} templatePicker={picker} onSaved={saved} />
      )}
    </section>
  );
}
