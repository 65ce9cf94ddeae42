"""A webhook's page shares the console's origin but not its powers: in the tab where the
console is signed in, the page's script runs, yet cannot read the tab's API key, call the
API as the console's user, or reach the console through a frame (see middleware.SANDBOX)."""

from __future__ import annotations

import json
import uuid

import orjson
import pytest
from playwright.sync_api import expect

from tests.e2e.wasm import b64, constant_wat, wat

pytestmark = pytest.mark.timeout(90)

# What a hostile function would try, each outcome written into the page for the test to read.
PROBE = """<!doctype html><html><body><pre id="probe"></pre><script>
(async () => {
  const out = { origin: self.origin, api: [] };
  const keys = [];
  try {
    for (let i = 0; i < sessionStorage.length; i++) {
      keys.push(sessionStorage.getItem(sessionStorage.key(i)));
    }
    out.storage = `read ${keys.length}`;
  } catch (e) { out.storage = e.name; }
  try { out.local = `read ${localStorage.length}`; } catch (e) { out.local = e.name; }
  for (const key of keys.length ? keys : [""]) {
    try {
      const headers = { Authorization: `Bearer ${key}` };
      out.api.push((await fetch("/api/v1/functions", { headers })).status);
    } catch (e) { out.api.push(e.name); }
  }
  const frame = document.createElement("iframe");
  frame.src = "/";
  await new Promise((done) => {
    frame.onload = done;
    document.body.append(frame);
    setTimeout(done, 5000);
  });
  try {
    out.frame = `read ${frame.contentWindow.sessionStorage.length}`;
  } catch (e) { out.frame = e.name; }
  document.getElementById("probe").textContent = JSON.stringify(out);
})();
</script></body></html>"""

# A function cannot loosen the sandbox with a policy of its own: both are enforced.
LOOSER = {"Content-Security-Policy": "sandbox allow-scripts allow-same-origin"}


@pytest.fixture
def api(console_server):
    with console_server.client() as client:
        yield client


@pytest.mark.parametrize("own_headers", [{}, LOOSER], ids=["sandbox", "own-looser-policy"])
def test_a_webhook_page_in_the_consoles_tab_cannot_reach_its_key(
    signed_in, api, console_server, own_headers
):
    page = signed_in.page
    # The key is in this tab's sessionStorage, for this origin: there to be stolen.
    assert page.evaluate("sessionStorage.getItem('nimbus.apiKey')") == console_server.api_key
    reply = {"statusCode": 200, "headers": {"Content-Type": "text/html", **own_headers},
             "body": PROBE}  # fmt: skip
    fn = api.post(
        "/api/v1/functions?wait=true",
        json={"name": f"probe-{uuid.uuid4().hex[:6]}", "runtime": "wasm",
              "artifact_base64": b64(wat(constant_wat(orjson.dumps(reply))))},
    ).json()  # fmt: skip
    assert fn["status"] == "active", fn
    assert fn["webhook_url"].startswith(console_server.url + "/webhook/")  # the same origin

    # What the browser says while refusing the probe's attempts.
    signed_in.allow(r"from origin 'null' has been blocked by CORS policy")
    signed_in.allow(r"Failed to load resource: net::ERR_FAILED")
    signed_in.allow(r"directive: \"frame-ancestors 'none'\"")
    page.goto(fn["webhook_url"])  # the same tab
    probe = page.locator("#probe")
    expect(probe).not_to_be_empty()  # the page's script ran: webhook pages still work
    out = json.loads(probe.text_content())
    assert out["origin"] == "null", out  # an opaque origin, not the console's
    assert out["storage"] == "SecurityError", out  # the key cannot be read
    assert out["local"] == "SecurityError", out  # nor the console's saved events
    assert out["api"] == ["TypeError"], out  # no API answer reaches the page
    assert out["frame"] == "SecurityError", out  # nor the console in a frame

    # The console in this tab is untouched: still signed in.
    page.goto(console_server.url)
    expect(page.get_by_role("heading", name="Functions")).to_be_visible()
