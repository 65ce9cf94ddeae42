// Settings of one function: webhook URL (copy, rotate, on/off), snippets, online/offline, delete.
import { useState } from "preact/hooks";
import { api, fn } from "./api.js";
import { Notice } from "./components.jsx";
import { go } from "./router.js";
import { copyText, errorText } from "./util.js";

function Copyable({ label, text }) {
  const [done, setDone] = useState(false);
  return (
    <div class="copyable">
      <pre aria-label={label}>{text}</pre>
      <button type="button" onClick={async () => { setDone(await copyText(text)); setTimeout(() => setDone(false), 1500); }}>{done ? "Copied" : "Copy"}</button>
    </div>
  );
}

export function SettingsPanel({ record, onChange }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const act = async (work) => {
    setBusy(true);
    setError(null);
    try { const r = await work(); if (r && r.id) onChange(r); } catch (e) { setError(errorText(e)); } finally { setBusy(false); }
  };
  const origin = location.origin;
  const curl = `curl -X POST ${origin}/api/v1/functions/${record.name}/invoke \\\n  -H "Authorization: Bearer $NIMBUS_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '{"name": "Ada"}'`;
  const cli = `nimbus invoke ${record.name} --data '{"name": "Ada"}'`;
  return (
    <div class="settings">
      <Notice onClose={() => setError(null)}>{error}</Notice>
      <section class="card">
        <h2>Webhook URL</h2>
        {record.webhook_url ? (
          <>
            <Copyable label="webhook URL" text={record.webhook_url} />
            <p class="hint">Anyone with this URL can call the function (no API key). Rotating gives a new URL; the old one stops working within a second.</p>
            <div class="row">
              <button disabled={busy} onClick={() => confirm("Rotate the webhook URL? The old one stops working.") && act(() => api.post(`${fn(record.id)}/webhook/rotate`))}>Rotate</button>
              <button disabled={busy} onClick={() => act(() => api.put(fn(record.id), { webhook: false }))}>Turn off</button>
            </div>
          </>
        ) : (
          <button disabled={busy} onClick={() => act(() => api.put(fn(record.id), { webhook: true }))}>Turn on the webhook URL</button>
        )}
      </section>
      <section class="card">
        <h2>Call it</h2>
        <Copyable label="curl snippet" text={curl} />
        <Copyable label="CLI snippet" text={cli} />
      </section>
      <section class="card">
        <h2>Serving</h2>
        <p>The function is <strong>{record.status}</strong>.</p>
        <div class="row">
          {record.status === "offline"
            ? <button disabled={busy} onClick={() => act(() => api.put(fn(record.id), { status: "active" }))}>Set online</button>
            : <button disabled={busy} onClick={() => act(() => api.put(fn(record.id), { status: "offline" }))}>Set offline</button>}
          <button class="danger" disabled={busy} onClick={() => confirm(`Delete ${record.name}? This cannot be undone.`) && act(async () => { await api.del(fn(record.id)); go("functions"); })}>Delete function</button>
        </div>
      </section>
    </div>
  );
}
