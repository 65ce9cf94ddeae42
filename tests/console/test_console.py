"""The console as a user drives it: key screens, create from a template, deploy, test, a
compile error at its line, an upload, bulk actions, charts. Screenshots of each main screen
are saved (see conftest) and were looked at by eye."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from gateway.telemetry.logs import InvocationLogs, format_ts
from store import LocalStore
from tests.e2e.server import NimbusProcess
from tests.e2e.wasm import ECHO_AND_LOG_WAT, ECHO_WAT, b64, hello_module, wat

# Each test fails at its own deadline instead of eating CI's time: a page that hangs (an
# endless loop in the page blocks even Playwright's keyboard) fails here, not at the end.
pytestmark = pytest.mark.timeout(90)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _deploy_wasm(api, name: str, tags: list[str] | None = None, wait: bool = True) -> dict:
    resp = api.post(
        f"/api/v1/functions?wait={str(wait).lower()}",
        json={"name": name, "runtime": "wasm", "artifact_base64": b64(hello_module()),
              "tags": tags or []},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def api(console_server):
    with console_server.client() as client:
        yield client


def test_a_wrong_key_shows_the_401_screen_and_a_right_one_opens_the_console(
    console, console_server
):
    console.allow(r"401 \(Unauthorized\)")  # the browser logs the refused request
    console.login("not-the-key")
    screen = console.page.locator("[data-screen='401']")
    expect(screen).to_contain_text("That API key was refused")
    console.shot("01-unauthorized")
    console.page.get_by_label("API key", exact=True).fill(console_server.api_key)
    console.page.get_by_role("button", name="Open console").click()
    expect(console.page.get_by_role("heading", name="Functions")).to_be_visible()
    # The key is kept for the tab: a reload stays signed in.
    console.page.reload()
    expect(console.page.get_by_role("heading", name="Functions")).to_be_visible()


@pytest.mark.timeout(180)  # two builds
def test_create_python_from_its_template_deploy_test_then_break_it(signed_in):
    page, name = signed_in.page, _name("words")
    page.get_by_role("link", name="New function").first.click()
    page.get_by_label("function name").fill(name)
    editor = page.locator(".editor[data-ready='yes'] .cm-content")
    expect(editor).to_contain_text("def main(event, context)")  # examples/python/wordstats
    expect(page.get_by_role("tab", name="text_tools.py")).to_be_visible()
    # One line of our own at the top, so the call has a log line to show.
    editor.click()
    page.keyboard.press("Control+Home")
    # (on a line of its own: typed in front of the docstring, the editor's auto-closed
    # quotes would merge with its opening quotes)
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowUp")
    page.keyboard.type('print("counting words for the console test")')
    signed_in.shot("02-create-python")
    page.get_by_role("button", name="Create and deploy").click()

    build = page.locator("section.build")
    expect(build).to_have_attribute("data-build-status", "ready", timeout=90_000)
    expect(build.get_by_label("build log")).not_to_be_empty()
    signed_in.shot("03-build-ready")

    page.get_by_role("tab", name="Test").click()
    expect(page.locator(".test-panel .cm-content")).to_contain_text("quick brown fox")
    page.get_by_role("button", name="Invoke", exact=True).click()
    result = page.get_by_label("invocation result")
    expect(result.locator("[data-fact='status']")).to_have_text("200")
    expect(result.get_by_label("result body")).to_contain_text('"words": 13')
    expect(result.locator("[data-fact='version']")).to_have_text("1")
    expect(result.locator("[data-fact='cold-start']")).to_have_text(re.compile("yes|no"))
    expect(result.locator("[data-fact='duration']")).to_have_text(re.compile(r"\d"))
    expect(result.get_by_label("invocation log")).to_contain_text(
        "counting words for the console test"
    )
    signed_in.shot("04-test-result")

    # A syntax error on line 2: the build fails, the editor marks that line, v1 still serves.
    page.get_by_role("tab", name="Code").click()
    editor = page.locator(".editor[data-ready='yes'] .cm-content")
    expect(editor).to_contain_text("counting words")
    page.locator(".cm-line").nth(1).click()
    page.keyboard.press("Home")
    page.keyboard.type("def broken(:\n")
    page.get_by_role("button", name="Deploy", exact=True).click()
    build = page.locator("section.build")
    expect(build).to_have_attribute("data-build-status", "failed", timeout=90_000)
    marks = page.get_by_label("build errors")
    expect(marks).to_contain_text("handler.py:2")
    expect(page.locator(".cm-lintRange-error").first).to_be_visible()
    expect(page.locator(".cm-gutter-lint .cm-lint-marker-error")).to_have_count(1)
    expect(page.get_by_text("still serves")).to_be_visible()
    signed_in.shot("05-compile-error")


def test_a_function_whose_only_build_failed_says_nothing_serves(signed_in, api):
    name = _name("never-built")
    body = {"name": name, "runtime": "python", "code": "def main(event):\n    return (\n"}
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.json()["status"] == "failed", resp.text
    signed_in.open(f"#/functions/{name}")
    page = signed_in.page
    # the header said "v— serving", and no notice said why nothing answered
    expect(page.get_by_text("nothing serving · latest v1")).to_be_visible()
    expect(page.get_by_text("Version 1 failed to build, and no version serves yet")).to_be_visible()


def test_logs_from_another_day_show_their_date(signed_in, api, console_server):
    fn = _deploy_wasm(api, _name("old-logs"))
    then = datetime.now(UTC) - timedelta(days=2)
    entry = {"invocation_id": "inv_old", "ts": format_ts(then), "stream": "stderr",
             "line": "from two days ago"}  # fmt: skip
    logs = InvocationLogs(LocalStore(console_server.data_dir), retention_sec=7 * 86400,
                          sweep_every_sec=3600, owner="test")  # fmt: skip
    logs.write(fn["id"], [entry], int(then.timestamp() * 1e6), "test", 1)
    signed_in.open(f"#/functions/{fn['name']}/logs")
    row = signed_in.page.locator("tr[data-invocation='inv_old']")
    # the time alone read as today's; the date shown is the page's own for that moment
    date = signed_in.page.evaluate(f"new Date({then.timestamp() * 1000}).toLocaleDateString()")
    expect(row.locator("td").first).to_contain_text(date)


def test_a_function_error_shows_type_message_and_the_users_stack(signed_in, api):
    name = _name("raises")
    resp = api.post(
        "/api/v1/functions?wait=true",
        json={"name": name, "runtime": "python",
              "code": "def main(event):\n    return helper(event)\n\n\n"
                      "def helper(event):\n    raise ValueError('no ' + event['what'])\n"},
    )  # fmt: skip
    assert resp.json()["status"] == "active", resp.text
    signed_in.allow(r"status of 500")  # a function error is a 500 by contract
    page = signed_in.page
    signed_in.open(f"#/functions/{name}/test")
    editor = page.locator(".test-panel .editor[data-ready='yes'] .cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type('{"what": "luck"}')
    page.keyboard.press("Control+Enter")
    failure = page.get_by_role("alert").filter(has_text="ValueError")
    expect(failure.locator("[data-fact='error-message']")).to_have_text("no luck")
    stack = page.get_by_label("stack trace")
    expect(stack.locator(".mine").first).to_contain_text("handler.py")
    expect(stack).to_contain_text("line 6")
    signed_in.shot("06-function-error")


def test_invoke_async_runs_the_version_asked_and_shows_its_error_as_a_sync_call(signed_in, api):
    name = _name("async-v1")
    failing = "def main(event):\n    raise ValueError('v1 says no')\n"
    resp = api.post("/api/v1/functions?wait=true",
                    json={"name": name, "runtime": "python", "code": failing})  # fmt: skip
    assert resp.json()["status"] == "active", resp.text
    resp = api.put(f"/api/v1/functions/{name}?wait=true",
                   json={"code": "def main(event):\n    return 'v2'\n"})  # fmt: skip
    assert resp.json()["active_version"] == 2, resp.text
    page = signed_in.page
    signed_in.open(f"#/functions/{name}/test")
    expect(page.locator(".test-panel .editor[data-ready='yes']")).to_be_visible()
    page.get_by_label("version to invoke").fill("1")
    page.get_by_role("button", name="Invoke async").click()
    done = page.get_by_label("async invocation")
    expect(done).to_have_attribute("data-status", "failed")  # v1: the version asked (ran v2)
    # type: message and the stack with the user's lines, as a sync call's (was raw JSON)
    failure = done.get_by_role("alert")
    expect(failure.locator("[data-fact='error-type']")).to_have_text("ValueError")
    expect(failure.locator("[data-fact='error-message']")).to_have_text("v1 says no")
    expect(done.get_by_label("stack trace").locator(".mine").first).to_contain_text("handler.py")


def test_upload_a_wasm_module_with_progress_then_bulk_offline_two(signed_in, api, tmp_path):
    page, name = signed_in.page, _name("upload")
    module = tmp_path / "hello.wasm"
    module.write_bytes(hello_module())
    page.get_by_role("link", name="New function").first.click()
    page.get_by_label("function name").fill(name)
    page.get_by_label("runtime").select_option("wasm")
    page.get_by_label("artifact file").set_input_files(module)
    expect(page.get_by_text("hello.wasm")).to_be_visible()
    page.get_by_role("button", name="Create and deploy").click()
    expect(page.locator("section.build")).to_have_attribute(
        "data-build-status", "ready", timeout=60_000
    )
    assert api.get(f"/api/v1/functions/{name}").json()["runtime"] == "wasm"
    signed_in.shot("07-upload-ready")

    other = _deploy_wasm(api, _name("other"), tags=["bulk"])["name"]
    page.get_by_role("link", name="Functions").first.click()
    page.get_by_label("search names").fill("")
    for fn_name in (name, other):
        page.get_by_label(f"select {fn_name}").check()
    toolbar = page.get_by_role("toolbar", name="bulk actions")
    expect(toolbar).to_contain_text("2 selected")
    toolbar.get_by_role("button", name="Set offline").click()
    outcome = page.get_by_label("bulk result")
    expect(outcome).to_contain_text("2 succeeded, 0 failed")
    expect(outcome).to_contain_text(f"✓ {name}")
    for fn_name in (name, other):
        row = page.locator(f"tr[data-name='{fn_name}']")
        expect(row.locator("[data-status='offline']")).to_be_visible()
        assert api.get(f"/api/v1/functions/{fn_name}").json()["status"] == "offline"
    signed_in.shot("08-bulk-offline")


def test_filters_and_pagination_follow_the_api(signed_in, api):
    # Eleven functions under a tag of their own: one more than a page of 10, whatever else
    # the server holds.
    tag = f"t{uuid.uuid4().hex[:6]}"
    made = sorted(
        _deploy_wasm(api, _name("page"), tags=[tag], wait=False)["name"] for _ in range(11)
    )
    page = signed_in.page
    page.get_by_label("page size").select_option("10")
    page.get_by_label("tags (all must match)").fill(tag)
    page.get_by_label("tags (all must match)").press("Enter")
    rows = page.locator("tbody tr[data-name]")
    pager = page.get_by_role("navigation", name="pages")
    expect(pager).to_contain_text("1–10 of 11")
    expect(rows).to_have_count(10)
    page.get_by_role("button", name="Next →").click()
    expect(pager).to_contain_text("11–11 of 11")
    expect(rows).to_have_count(1)
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.get_by_label("search names").fill(made[0])
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", made[0])
    expect(pager).to_contain_text("1–1 of 1")


def test_observe_charts_the_calls_just_made(signed_in, api):
    name = _deploy_wasm(api, _name("charted"))["name"]
    made = [api.post(f"/api/v1/functions/{name}/invoke", json={}) for _ in range(3)]
    assert [c.status_code for c in made] == [200] * 3
    page = signed_in.page
    signed_in.open(f"#/functions/{name}/observe")
    deadline = time.monotonic() + 15  # outcomes are written off the request path in batches
    summary = page.locator(".observe .filters .muted")
    while time.monotonic() < deadline and "3 invocation" not in (summary.text_content() or ""):
        page.wait_for_timeout(500)
    expect(summary).to_contain_text("3 invocation(s)")
    calls = page.get_by_label("Invocations", exact=True)
    expect(calls.locator("canvas")).to_be_visible()
    assert int(calls.get_attribute("data-points")) > 0
    expect(page.get_by_label("recent invocations").locator("tbody tr")).to_have_count(3)
    # Each call's cold start, as its response said (the first one started the instance).
    for call in made:
        row = page.locator(f"tr[data-invocation='{call.headers['X-Nimbus-Invocation-Id']}']")
        cold = "yes" if call.headers["X-Nimbus-Cold-Start"] == "true" else "no"
        expect(row.locator("[data-fact='cold-start']")).to_have_text(cold)
    assert [c.headers["X-Nimbus-Cold-Start"] for c in made].count("true") == 1
    # From the windowed stats API: the version's row, and three series of durations.
    v1 = page.get_by_label("by version").locator("tr[data-version='1']")
    expect(v1.locator("[data-fact='calls']")).to_have_text("3")
    duration = page.get_by_label("Duration", exact=True)
    for series in ("p50", "p95", "p99"):
        expect(duration.locator(".u-legend")).to_contain_text(series)
    expect(calls.locator(".u-legend")).to_contain_text("timed out")
    signed_in.shot("09-observe")


def test_system_page_and_phone_width_in_dark(signed_in):
    page = signed_in.page
    page.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", name="Quota")).to_be_visible()
    signed_in.shot("10-system")
    page.get_by_label("theme").select_option("dark")
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Functions").first.click()
    expect(page.get_by_role("heading", name="Functions")).to_be_visible()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the list scrolls sideways at phone width ({width}px)"
    signed_in.shot("11-phone-dark")


def _a_schedule_that_ran(api, name: str) -> dict:
    """A schedule of `name` after its first tick fired, switched off so it ticks no more."""
    path = f"/api/v1/functions/{name}/schedules"
    made = api.post(path, json={"expression": "rate(1 second)"})
    assert made.status_code == 201, made.text
    deadline = time.monotonic() + 30
    while not (schedule := api.get(f"{path}/{made.json()['id']}").json())["last_run_at"]:
        assert time.monotonic() < deadline, f"the schedule never ran: {schedule}"
        time.sleep(0.2)
    off = api.put(f"{path}/{schedule['id']}", json={"enabled": False})
    assert off.status_code == 200, off.text
    return off.json()


def test_system_page_lists_every_schedule_each_linking_to_its_owner(signed_in, api):
    name, flow = _name("ticked"), _name("flow")
    _deploy_wasm(api, name, wait=False)
    weekdays = {"expression": "0 9 * * mon-fri", "timezone": "Europe/Berlin"}
    made = api.post(f"/api/v1/functions/{name}/schedules", json=weekdays)
    assert made.status_code == 201, made.text
    done = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    assert api.post("/api/v1/workflows", json={"name": flow, "definition": done}).is_success
    off = api.post(f"/api/v1/workflows/{flow}/schedules",
                   json={"expression": "@daily", "enabled": False})  # fmt: skip
    assert off.status_code == 201, off.text
    ran = _a_schedule_that_ran(api, _deploy_wasm(api, _name("ran"))["name"])

    page = signed_in.page
    page.get_by_role("link", name="System").click()
    listed = page.get_by_role("table", name="Schedules")
    row = listed.locator(f"[data-schedule='{made.json()['id']}']")
    expect(row).to_contain_text("At 09:00 on Monday through Friday (Europe/Berlin)")
    expect(row.locator("[data-fact='next-run'] time")).to_be_visible()
    expect(row.locator("[data-fact='last-run']")).to_have_text("—")  # never ran yet
    last = listed.locator(f"[data-schedule='{ran['id']}'] [data-fact='last-run'] time")
    expect(last).to_be_visible()
    # A tick in flight when it was switched off may land after: at most the API's run now.
    now_run = api.get(f"/api/v1/functions/{ran['function_name']}/schedules/{ran['id']}").json()
    runs = sorted({ran["last_run_at"], now_run["last_run_at"]}, key=datetime.fromisoformat)
    shown = datetime.fromisoformat(last.get_attribute("datetime"))
    assert datetime.fromisoformat(runs[0]) <= shown <= datetime.fromisoformat(runs[-1])
    other = listed.locator(f"[data-schedule='{off.json()['id']}']")
    expect(other).to_have_attribute("data-enabled", "no")
    expect(other.get_by_role("link", name=f"workflow {flow}")).to_be_visible()
    signed_in.shot("10b-system-schedules")
    row.get_by_role("link", name=name).click()
    expect(page.get_by_role("table", name="schedules").locator(
        f"[data-schedule='{made.json()['id']}']")).to_be_visible()  # fmt: skip


def test_versions_diff_rollback_and_an_alias_weight(signed_in, api):
    name = _name("versions")
    code = "def main(event):\n    return {'v': %d}\n"
    resp = api.post("/api/v1/functions?wait=true",
                    json={"name": name, "runtime": "python", "code": code % 1})  # fmt: skip
    assert resp.json()["status"] == "active", resp.text
    resp = api.put(f"/api/v1/functions/{name}?wait=true", json={"code": code % 2})
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 60
    while api.get(f"/api/v1/functions/{name}").json()["active_version"] != 2:
        assert time.monotonic() < deadline, "version 2 never became active"
        time.sleep(0.2)
    assert api.post(f"/api/v1/functions/{name}/aliases", json={"name": "prod", "version": 1})
    page = signed_in.page
    signed_in.open(f"#/functions/{name}/versions")
    rows = page.get_by_label("versions", exact=True).locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("tr[data-version='2']")).to_have_attribute("data-serving", "yes")
    # The diff of the two versions' source.
    page.get_by_label("compare version 1").check()
    page.get_by_label("compare version 2").check()
    diff = page.get_by_label("diff of version 1 and version 2")
    expect(diff.locator(".del")).to_have_text("-     return {'v': 1}")
    expect(diff.locator(".add")).to_have_text("+     return {'v': 2}")
    signed_in.shot("12-versions-diff")
    # Roll back: version 1 serves, here and in the API.
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator("tr[data-version='1']")).to_have_attribute("data-serving", "yes")
    expect(page.get_by_text("Version 1 serves now.")).to_be_visible()
    assert api.get(f"/api/v1/functions/{name}").json()["active_version"] == 1
    # v2 is newer than what serves: "Serve v2" (it read "Roll back to v2")
    expect(page.locator("tr[data-version='2']").get_by_role("button")).to_have_text("Serve v2")
    # The alias: v2 as its second version, the slider moved to 30 % by keyboard.
    alias = page.locator("tr[data-alias='prod']")
    alias.get_by_label("prod second version").select_option("2")
    slider = alias.get_by_label("prod weight of the second version")
    slider.focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
    expect(alias.locator("[data-fact='weight']")).to_have_text("30%")
    alias.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-alias='prod'] [data-fact='weight']")).to_have_text("30%")
    deadline = time.monotonic() + 10
    while api.get(f"/api/v1/functions/{name}/aliases/prod").json()["routing"] != {"2": 30.0}:
        assert time.monotonic() < deadline, "the alias weight never reached the API"
        time.sleep(0.2)
    signed_in.shot("13-versions-alias")


def test_schedules_create_edit_and_disable(signed_in, api):
    name = _deploy_wasm(api, _name("ticks"))["name"]
    page = signed_in.page
    signed_in.open(f"#/functions/{name}/schedules")
    expect(page.get_by_label("schedules", exact=True)).to_contain_text("No schedules yet.")
    form = page.get_by_role("form", name="Add schedule")
    form.get_by_label("schedule expression").fill("0 9 * * 1-5")
    form.get_by_label("time zone").fill("Europe/Paris")
    form.get_by_label("schedule event").fill('{"report": "daily"}')
    form.get_by_role("button", name="Add schedule").click()
    row = page.locator("tr[data-schedule]")
    expect(row).to_have_count(1)
    expect(row.locator("[data-fact='summary']")).to_contain_text("Europe/Paris")
    expect(row.locator("[data-fact='next-run'] time")).to_be_visible()
    (made,) = api.get(f"/api/v1/functions/{name}/schedules").json()["schedules"]
    assert (made["expression"], made["event"]) == ("0 9 * * 1-5", {"report": "daily"})
    signed_in.shot("14-schedules")
    # Edit to a rate, then switch it off: no next run while disabled.
    row.get_by_role("button", name="Edit").click()
    edit = page.get_by_role("form", name="Save schedule")
    edit.get_by_label("schedule expression").fill("rate(10 minutes)")
    edit.get_by_role("button", name="Save schedule").click()
    expect(row.locator("td.mono")).to_contain_text("rate(10 minutes)")
    row.get_by_label("enable rate(10 minutes)").uncheck()
    expect(row).to_have_attribute("data-enabled", "no")
    expect(row.locator("[data-fact='next-run']")).to_have_text("—")
    schedule = api.get(f"/api/v1/functions/{name}/schedules/{made['id']}").json()
    assert (schedule["expression"], schedule["enabled"]) == ("rate(10 minutes)", False)


def test_start_a_canary_on_an_alias_watch_it_then_abort_it(signed_in, api):
    name = _deploy_wasm(api, _name("canary"))["name"]
    resp = api.put(f"/api/v1/functions/{name}?wait=true",
                   json={"artifact_base64": b64(hello_module())})  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert api.post(f"/api/v1/functions/{name}/aliases", json={"name": "live", "version": 1})
    page = signed_in.page
    signed_in.open(f"#/functions/{name}/versions")
    alias = page.locator("tr[data-alias='live']")
    alias.get_by_role("button", name="Canary…").click()
    form = page.get_by_role("form", name="start a canary on live")
    expect(form.get_by_label("canary version")).to_have_value("2")
    form.get_by_label("canary steps").fill("20, 50")
    form.get_by_label("canary interval").fill("600")  # no step passes during the test
    form.get_by_label("canary max error rate").fill("1")
    form.get_by_label("canary on idle").select_option("promote")
    form.get_by_label("canary idle intervals").fill("4")
    form.get_by_role("button", name="Start canary").click()
    canary = alias.locator("[data-fact='canary']")
    expect(canary.locator("[data-canary='progressing']")).to_be_visible()
    expect(canary.locator("[data-fact='canary-weight']")).to_have_text("20%")
    step = canary.locator("[data-fact='canary-step']")
    expect(step).to_contain_text("step 1 of 3 (20 → 50 → 100 %)")
    expect(canary).to_contain_text("v1 → v2")
    state = api.get(f"/api/v1/functions/{name}/aliases/live").json()
    assert (state["routing"], state["canary"]["max_error_rate"]) == ({"2": 20.0}, 0.01)
    assert (state["canary"]["on_idle"], state["canary"]["idle_intervals"]) == ("promote", 4)
    signed_in.shot("15-canary")
    # Abort: the alias serves v1 alone again, here and in the API.
    canary.get_by_role("button", name="Abort canary").click()
    expect(canary.locator("[data-canary='aborted']")).to_be_visible()
    expect(canary).to_contain_text("aborted by a user")
    expect(alias.get_by_role("button", name="Canary…")).to_be_visible()
    state = api.get(f"/api/v1/functions/{name}/aliases/live").json()
    assert (state["version"], state["routing"], state["canary"]["status"]) == (1, {}, "aborted")


def _branching(function: str, next_after_call: str = "Both") -> dict:
    """Choice → Task → Parallel (two Pass branches) → Succeed, or → Fail when `go` is not true."""
    branch = lambda name: {"StartAt": name, "States": {name: {"Type": "Pass", "End": True}}}  # noqa: E731
    return {
        "StartAt": "Check",
        "States": {
            "Check": {"Type": "Choice", "Default": "Stop",
                      "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "Call"}]},
            "Call": {"Type": "Task", "Resource": function, "ResultPath": "$.echo",
                     "Next": next_after_call},
            "Both": {"Type": "Parallel", "Branches": [branch("Left"), branch("Right")],
                     "Next": "Done"},
            "Done": {"Type": "Succeed"},
            "Stop": {"Type": "Fail", "Error": "NoGo", "Cause": "go was not true"},
        },
    }  # fmt: skip


def _replace_editor_text(page, editor, text: str) -> None:
    """Select all, then paste `text` as a user's clipboard would (the editor takes it whole:
    no auto-closed brackets, no browser-made markup in the editable area)."""
    editor.click()
    page.keyboard.press("Control+a")
    editor.evaluate(
        """(el, text) => {
            const data = new DataTransfer();
            data.setData("text/plain", text);
            const init = {clipboardData: data, bubbles: true, cancelable: true};
            el.dispatchEvent(new ClipboardEvent("paste", init));
        }""",
        text,
    )


@pytest.mark.timeout(120)
def test_workflow_create_graph_start_and_follow_executions(signed_in, api):
    function = _name("echo")
    echo = {"name": function, "runtime": "wasm", "artifact_base64": b64(wat(ECHO_WAT))}
    resp = api.post("/api/v1/functions?wait=true", json=echo)
    assert resp.status_code == 201, resp.text
    name, page = _name("flow"), signed_in.page
    page.get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="New workflow").click()
    form = page.get_by_role("form", name="new workflow")
    form.get_by_label("workflow name").fill(name)
    editor = form.locator(".editor[data-ready='yes'] .cm-content")
    expect(editor).to_contain_text('"StartAt": "Call"')  # the starter definition
    # A Next to nowhere: 422, and the problem is named.
    signed_in.allow(r"status of 422")
    _replace_editor_text(page, editor, json.dumps(_branching(function, "Nowhere")))
    form.get_by_role("button", name="Create workflow").click()
    expect(form.get_by_label("definition problems")).to_contain_text("Nowhere")
    # each problem is listed once, not also in parentheses after the message
    assert "(definition." not in form.get_by_role("alert").inner_text()
    _replace_editor_text(page, editor, json.dumps(_branching(function)))
    form.get_by_role("button", name="Create workflow").click()

    # The graph: every state, the Parallel's two branches, nothing coloured yet.
    graph = page.get_by_label("workflow graph")
    for state in ("Check", "Call", "Both", "Left", "Right", "Done", "Stop"):
        expect(graph.locator(f"[data-state='{state}']")).to_have_attribute("data-run", "none")
    expect(graph.locator("[data-cluster]")).to_have_count(2)
    expect(graph.locator("[data-edge='Check→Stop'] text")).to_have_text("default")
    signed_in.shot("16-workflow-graph")

    # Run it with go = true: the history grows to ExecutionSucceeded, the path turns green.
    input_editor = page.get_by_label("start an execution").locator(
        ".editor[data-ready='yes'] .cm-content"
    )
    _replace_editor_text(page, input_editor, '{"go": true, "n": 7}')
    page.get_by_role("button", name="Start execution").click()
    execution = page.get_by_label("execution", exact=True)
    expect(execution).to_have_attribute("data-execution-status", "succeeded", timeout=30_000)
    history = execution.get_by_label("execution history")
    for event in ("ExecutionStarted", "ChoiceStateEntered", "TaskSucceeded", "ParallelStateStarted",
                  "ExecutionSucceeded"):  # fmt: skip
        expect(history.locator(f"tr[data-event='{event}']").first).to_be_visible()
    expect(execution.get_by_label("execution output")).to_contain_text('"n": 7')
    run = page.get_by_label(re.compile("^graph of execution "))
    for state in ("Check", "Call", "Both", "Left", "Right", "Done"):
        expect(run.locator(f"[data-state='{state}']")).to_have_attribute("data-run", "succeeded")
    expect(run.locator("[data-state='Stop']")).to_have_attribute("data-run", "none")
    for edge in ("Check→Call", "Both→Left", "Right→Done", "Done→End"):
        expect(run.locator(f"[data-edge='{edge}']")).to_have_attribute("data-taken", "yes")
    expect(run.locator("[data-edge='Check→Stop']")).to_have_attribute("data-taken", "no")
    signed_in.shot("17-workflow-succeeded")

    # go = false: the Fail state is red, the error shown; the list holds both runs.
    _replace_editor_text(page, input_editor, '{"go": false}')
    page.get_by_role("button", name="Start execution").click()
    expect(execution).to_have_attribute("data-execution-status", "failed", timeout=30_000)
    expect(execution.locator("[data-fact='execution-error']")).to_have_text("NoGo")
    expect(run.locator("[data-state='Stop']")).to_have_attribute("data-run", "failed")
    expect(run.locator("[data-state='Call']")).to_have_attribute("data-run", "none")
    executions = page.get_by_label("executions", exact=True).locator("tr[data-execution]")
    expect(executions).to_have_count(2)
    listed = api.get(f"/api/v1/workflows/{name}/executions").json()["executions"]
    assert [e["status"] for e in listed] == ["failed", "succeeded"]
    assert listed[1]["input"] == {"go": True, "n": 7}
    signed_in.shot("18-workflow-failed")


def test_workflow_execution_followed_live_aborted_then_a_schedule(signed_in, api):
    name = _name("nap")
    nap = {"Type": "Wait", "Seconds": 600, "Next": "Done"}
    definition = {"StartAt": "Nap", "States": {"Nap": nap, "Done": {"Type": "Succeed"}}}
    assert (
        api.post("/api/v1/workflows", json={"name": name, "definition": definition}).status_code
        == 201
    )
    page = signed_in.page
    signed_in.open(f"#/workflows/{name}")
    page.get_by_role("button", name="Start execution").click()
    execution = page.get_by_label("execution", exact=True)
    expect(execution).to_have_attribute("data-execution-status", "running")
    expect(
        execution.get_by_label("execution history").locator("tr[data-event='WaitScheduled']")
    ).to_be_visible()
    run = page.get_by_label(re.compile("^graph of execution "))
    expect(run.locator("[data-state='Nap']")).to_have_attribute("data-run", "running")
    execution.get_by_role("button", name="Abort execution").click()
    expect(execution).to_have_attribute("data-execution-status", "aborted")
    expect(run.locator("[data-state='Nap']")).to_have_attribute("data-run", "aborted")
    expect(run.locator("[data-state='Done']")).to_have_attribute("data-run", "none")
    (listed,) = api.get(f"/api/v1/workflows/{name}/executions").json()["executions"]
    assert listed["status"] == "aborted"
    signed_in.shot("19-workflow-aborted")
    # A schedule of the workflow: each tick would start an execution with this input.
    schedules = page.get_by_label("workflow schedules")
    expect(schedules.get_by_label("version or alias")).to_have_count(0)  # no versions to pick
    form = schedules.get_by_role("form", name="Add schedule")
    form.get_by_label("schedule expression").fill("0 3 1 1 *")
    form.get_by_label("schedule event").fill('{"from": "schedule"}')
    form.get_by_role("button", name="Add schedule").click()
    row = schedules.locator("tr[data-schedule]")
    expect(row.locator("[data-fact='summary']")).to_contain_text("UTC")
    expect(row.locator("[data-fact='next-run'] time")).to_be_visible()
    (made,) = api.get(f"/api/v1/workflows/{name}/schedules").json()["schedules"]
    assert (made["expression"], made["event"]) == ("0 3 1 1 *", {"from": "schedule"})
    assert made["workflow_id"] == listed["workflow"]["id"] and made["next_run_at"]


def test_the_first_load_is_the_shell_alone_and_pages_come_when_opened(console, console_server):
    page = console.page
    scripts: list[tuple[str, int]] = []
    page.on(
        "response",
        lambda r: "/assets/" in r.url and r.url.endswith(".js")
        and scripts.append((r.url.rsplit("/", 1)[1], len(r.body()))),
    )  # fmt: skip
    console.open()
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    shell = sum(size for _, size in scripts)
    assert shell < 40_000, f"the key screen loaded {shell} bytes of JS: {scripts}"
    console.login(console_server.api_key)
    expect(page.get_by_role("heading", name="Functions")).to_be_visible()
    # The list needs neither the editor nor the charts nor the graph layout.
    names = [name for name, _ in scripts]
    assert not [n for n in names if n.startswith(("codemirror-", "uPlot", "workflow"))], names
    # NOTE: by request, not response: `scripts` fills once a body is read, which may come
    # after the editor shows (this assert failed 1 run in 2 in a full console run)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url.rsplit("/", 1)[1]))
    page.get_by_role("link", name="New function").first.click()
    expect(page.locator(".editor[data-ready='yes']").first).to_be_visible()
    assert any(n.startswith("codemirror-") for n in requested), requested  # when first needed


def _deploy_echo(api, **extra) -> str:
    name = _name("echo")
    # the event comes back as the result and is logged (a result itself is not)
    body = {"name": name, "runtime": "wasm", "artifact_base64": b64(wat(ECHO_AND_LOG_WAT)),
            **extra}  # fmt: skip
    resp = api.post("/api/v1/functions?wait=true", json=body)
    assert resp.status_code == 201 and resp.json()["status"] == "active", resp.text
    return name


def test_saved_test_events_async_invoke_and_logs_by_invocation_id(signed_in, api):
    name, page = _deploy_echo(api), signed_in.page
    signed_in.open(f"#/functions/{name}/test")
    editor = page.locator(".test-panel .editor[data-ready='yes'] .cm-content")
    _replace_editor_text(page, editor, '{"order": 41}')
    page.once("dialog", lambda d: d.accept("order 41"))
    page.get_by_role("button", name="Save event").click()
    expect(page.get_by_label("saved events").locator("option", has_text="order 41")).to_have_count(
        1
    )
    # Async: the invocation is followed until it ends, with its result.
    page.get_by_role("button", name="Invoke async").click()
    invocation = page.get_by_label("async invocation")
    expect(invocation).to_have_attribute("data-status", "succeeded")
    expect(invocation.get_by_label("async result")).to_contain_text('"order": 41')
    # The event is remembered for this function, the saved one too, across a reload.
    _replace_editor_text(page, editor, '{"order": 42}')
    page.reload()
    expect(editor).to_have_text('{"order": 42}')
    page.get_by_label("saved events").select_option("order 41")
    expect(editor).to_have_text('{"order": 41}')
    signed_in.shot("20-test-async")

    # Logs: two more calls, then only the second one's lines by its invocation id.
    ids = []
    for n in (1, 2):
        resp = api.post(f"/api/v1/functions/{name}/invoke", json={"call": n})
        ids.append(resp.headers["X-Nimbus-Invocation-Id"])
    page.get_by_role("tab", name="Logs").click()
    rows = page.get_by_label("log entries").locator("tr[data-invocation]")
    expect(rows.filter(has_text='"call":1')).not_to_have_count(0)
    page.get_by_label("invocation id").press_sequentially(ids[1], delay=5)  # live refresh on
    expect(rows.filter(has_text='"call":2')).not_to_have_count(0)
    expect(rows.filter(has_text='"call":1')).to_have_count(0)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.invocation)")) == {ids[1]}
    expect(page.get_by_label("invocation id")).to_have_value(ids[1])
    signed_in.shot("21-logs-by-invocation")


def test_edit_memory_timeout_tags_and_env_then_webhook_copy_and_rotate(signed_in, api):
    name, page = _deploy_echo(api, env_vars={"TOKEN": "abc"}), signed_in.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    signed_in.open(f"#/functions/{name}/code")
    form = page.get_by_role("form", name=f"edit {name}")
    token = form.get_by_label("value of TOKEN")
    expect(token).to_have_attribute("type", "password")
    expect(token).to_have_value("")  # never sent back by the API
    expect(token).to_have_attribute("placeholder", re.compile(r"\*\*\*\* \(unchanged\)"))
    form.get_by_label("memory in MB").fill("64")
    form.get_by_label("timeout in seconds").fill("2")
    form.get_by_label("tags", exact=True).fill("blue, green")
    form.get_by_role("button", name="Add variable").click()
    form.get_by_label("variable name").last.fill("MODE")
    form.get_by_label("value of MODE").fill("fast")
    form.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.locator("section.build")).to_have_attribute("data-build-status", "ready")
    record = api.get(f"/api/v1/functions/{name}").json()
    assert (record["memory_mb"], record["timeout_sec"], record["tags"]) == (
        64,
        2,
        ["blue", "green"],
    )
    assert record["env_vars"] == {"TOKEN": "****", "MODE": "****"}
    signed_in.shot("22-edit-settings")

    page.get_by_role("tab", name="Settings").click()
    url = page.get_by_label("webhook URL")
    expect(url).to_have_text(record["webhook_url"])
    expect(page.get_by_label("curl snippet")).to_contain_text(f"/api/v1/functions/{name}/invoke")
    expect(page.get_by_label("CLI snippet")).to_contain_text(f"nimbus invoke {name}")
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == record["webhook_url"]
    # as README and `nimbus webhook rotate --help` say (the page said "at once"; workers
    # each cache the record up to a second)
    expect(page.get_by_text("the old one stops working within a second")).to_be_visible()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Rotate").click()
    expect(url).not_to_have_text(record["webhook_url"])
    rotated = api.get(f"/api/v1/functions/{name}").json()["webhook_url"]
    expect(url).to_have_text(rotated)
    old_path = "/webhook/" + record["webhook_url"].rsplit("/", 1)[1]
    new_path = "/webhook/" + rotated.rsplit("/", 1)[1]
    assert api.post(old_path, json={}).status_code == 404
    assert api.post(new_path, json={}).status_code == 200
    signed_in.shot("23-settings-webhook")


def test_the_edit_form_shows_the_handler_in_use(signed_in, api):
    name, page = _name("handled"), signed_in.page
    body = {"name": name, "runtime": "python", "handler": "app.go",
            "files": {"app.py": "def go(event):\n    return event\n"}}  # fmt: skip
    assert api.post("/api/v1/functions?wait=true", json=body).json()["status"] == "active"
    signed_in.open(f"#/functions/{name}/code")
    form = page.get_by_role("form", name=f"edit {name}")
    # left empty, an edit keeps it: the field says which one that is (not 'handler.main')
    expect(form.get_by_label("handler", exact=True)).to_have_attribute("placeholder", "app.go")
    expect(form.get_by_text("empty: keep the current one")).to_be_visible()


def test_a_refused_setting_shows_what_is_wrong_once(signed_in, api):
    signed_in.allow(r"status of 422")  # the browser logs the refused request
    name, page = _deploy_echo(api), signed_in.page
    signed_in.open(f"#/functions/{name}/code")
    form = page.get_by_role("form", name=f"edit {name}")
    form.get_by_role("button", name="Add variable").click()
    form.get_by_label("variable name").last.fill("1BAD")
    form.get_by_label("value of 1BAD").fill("x")
    form.get_by_role("button", name="Deploy", exact=True).click()
    # The API's message names the field and the problem; the notice says it once.
    expect(form.get_by_role("alert").locator("> div")).to_have_text(
        "validation_error: env_vars: '1BAD' is not a valid environment variable name"
    )


def test_runtime_and_status_filters_then_bulk_active_and_delete(signed_in, api):
    tag = f"t{uuid.uuid4().hex[:6]}"
    made = sorted(_deploy_wasm(api, _name("bulk"), tags=[tag])["name"] for _ in range(3))
    assert api.put(f"/api/v1/functions/{made[0]}", json={"status": "offline"}).status_code == 200
    page = signed_in.page
    rows = page.locator("tbody tr[data-name]")
    page.get_by_label("tags (all must match)").fill(tag)
    expect(rows).to_have_count(3)
    page.get_by_label("runtime").select_option("python")
    expect(page.get_by_text("No functions match.")).to_be_visible()
    page.get_by_label("runtime").select_option("wasm")
    page.get_by_label("status").select_option("offline")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", made[0])
    # Active again, by the bulk bar (the status the filter, the API and `nimbus update
    # --status` name; the button said "online"): one success, named.
    page.get_by_label(f"select {made[0]}").check()
    page.get_by_role("toolbar", name="bulk actions").get_by_role(
        "button", name="Set active"
    ).click()
    outcome = page.get_by_label("bulk result")
    expect(outcome).to_contain_text("Set active: 1 succeeded, 0 failed")
    expect(outcome).to_contain_text(f"✓ {made[0]}")
    assert api.get(f"/api/v1/functions/{made[0]}").json()["status"] == "active"
    # Delete two (after the browser's confirm): gone here and from the API.
    page.get_by_label("status").select_option("")
    expect(rows).to_have_count(3)
    for name in made[:2]:
        page.get_by_label(f"select {name}").check()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("toolbar", name="bulk actions").get_by_role("button", name="Delete").click()
    expect(outcome).to_contain_text("2 succeeded, 0 failed")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-name", made[2])
    assert [api.get(f"/api/v1/functions/{n}").status_code for n in made] == [404, 404, 200]
    signed_in.shot("24-bulk-delete")


def test_drag_and_drop_a_wasm_module_shows_the_upload_progress(signed_in, api):
    page, name = signed_in.page, _name("dropped")
    page.get_by_role("link", name="New function").first.click()
    page.get_by_label("function name").fill(name)
    page.get_by_label("runtime").select_option("wasm")
    data = list(hello_module())
    transfer = page.evaluate_handle(
        """(bytes) => {
            const dt = new DataTransfer();
            const type = {type: "application/wasm"};
            dt.items.add(new File([new Uint8Array(bytes)], "dropped.wasm", type));
            return dt;
        }""",
        data,
    )
    zone = page.get_by_test_id("dropzone")
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bover\b"))
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).to_contain_text(f"dropped.wasm — {len(data)} B")
    # Every percentage the bar shows, recorded as it changes (the page moves on to the build
    # as soon as the upload is answered).
    zone.evaluate(
        """(zone) => {
            window.shownProgress = [];
            new MutationObserver(() => {
                const bar = zone.querySelector("progress");
                if (bar) window.shownProgress.push(Math.round(bar.value * 100));
            }).observe(zone, {subtree: true, childList: true, characterData: true});
        }"""
    )
    page.get_by_role("button", name="Create and deploy").click()
    expect(page.locator("section.build")).to_have_attribute("data-build-status", "ready")
    shown = page.evaluate("window.shownProgress")
    assert shown and shown[-1] == 100 and shown == sorted(shown), shown
    assert api.get(f"/api/v1/functions/{name}").json()["code_size"] == len(data)


def test_the_create_form_follows_the_servers_runtime_registry(signed_in, api):
    """Runtimes, their memory floor and what an upload accepts come from GET /api/v1/runtimes."""
    registry = {r["name"]: r for r in api.get("/api/v1/runtimes").json()["runtimes"]}
    page = signed_in.page
    page.get_by_role("link", name="New function").first.click()
    choice = page.get_by_label("runtime")
    expect(choice.locator("option")).to_have_count(len(registry))
    # the page starts from its built-in list (python first) until the registry answers
    expect(choice.locator("option").first).to_have_attribute("value", next(iter(registry)))
    values = choice.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    assert values == list(registry)
    choice.select_option("python")
    memory = page.get_by_label("memory in MB")
    expect(memory).to_have_attribute("min", str(registry["python"]["memory_floor_mb"]))
    expect(page.get_by_label("handler", exact=True)).to_have_attribute(
        "placeholder", registry["python"]["default_handler"]
    )
    choice.select_option("wasm")
    expect(page.get_by_label("artifact file")).to_have_attribute("accept", ".wasm")


@pytest.mark.parametrize(
    "runtime, language, keyword",
    [("python", "python", "def"), ("javascript", "javascript", "function"), ("go", "go", "func"),
     ("rust", "rust", "fn"), ("c", "cpp", "return")],
)  # fmt: skip
def test_each_language_opens_on_its_template_with_highlighting(
    signed_in, runtime, language, keyword
):
    page = signed_in.page
    signed_in.open(f"#/new?runtime={runtime}")
    editor = page.locator(".editor[data-ready='yes'] .cm-content")
    expect(editor).to_have_attribute("data-language", language)
    # Highlighted: the language's keyword sits in a token span of its own.
    expect(
        editor.locator(".cm-line span", has_text=re.compile(rf"^{keyword}$")).first
    ).to_be_visible()


@pytest.mark.timeout(180)  # a build that resolves a requirement
def test_python_requirements_are_installed_by_the_build(signed_in):
    page, name = signed_in.page, _name("tabled")
    signed_in.open("#/new?runtime=python")
    page.get_by_label("function name").fill(name)
    editor = page.locator(".editor[data-ready='yes'] .cm-content")
    expect(editor).to_contain_text("def main")
    code = (
        "import importlib.metadata\nimport tabulate\n\n\ndef main(event):\n"
        "    return {'tabulate': importlib.metadata.version('tabulate'),\n"
        "            'head': tabulate.tabulate([[1, 2]], headers=['a', 'b']).splitlines()[0]}\n"
    )
    _replace_editor_text(page, editor, code)
    page.get_by_label("requirements").fill("tabulate>=0.9")
    page.get_by_role("button", name="Create and deploy").click()
    build = page.locator("section.build")
    expect(build).to_have_attribute("data-build-status", "ready", timeout=150_000)
    expect(build.get_by_label("build log")).to_contain_text("resolved tabulate==")
    page.get_by_role("tab", name="Test").click()
    page.get_by_role("button", name="Invoke", exact=True).click()
    body = page.get_by_label("invocation result").get_by_label("result body")
    expect(body).to_contain_text('"tabulate": "0.')
    expect(body).to_contain_text(re.compile(r'"head": "\s*a\s+b"'))


@pytest.mark.parametrize("console", [{"width": 390, "height": 844}], indirect=True)
def test_a_workflow_at_phone_width_in_dark(signed_in, api):
    name = _name("phone")
    definition = _branching(_deploy_echo(api))
    resp = api.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert resp.status_code == 201, resp.text
    page = signed_in.page
    page.get_by_label("theme").select_option("dark")
    signed_in.open(f"#/workflows/{name}")
    expect(page.get_by_label("workflow graph").locator("[data-state='Both']")).to_be_visible()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the workflow page scrolls sideways at phone width ({width}px)"
    signed_in.shot("25-workflow-phone-dark")


def test_the_form_takes_the_servers_own_memory_and_timeout_limits(browser, tmp_path):
    # Not 4096 MB / 300 s built into the page: a server set lower refused what the form let
    # through, one set higher was refused by the form.
    server = NimbusProcess(tmp_path / "data", {"MAX_MEMORY_MB": "2048", "MAX_TIMEOUT_SEC": "120"})
    server.start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        page.get_by_label("API key", exact=True).fill(server.api_key)
        page.get_by_role("button", name="Open console").click()
        page.get_by_role("link", name="New function").first.click()
        form = page.get_by_role("form", name="new function")
        expect(form.get_by_label("memory in MB")).to_have_attribute("max", "2048")
        expect(form.get_by_label("timeout in seconds")).to_have_attribute("max", "120")
    finally:
        context.close()
        server.stop()
