"""`nimbus schedules` against a real server; the effect checked through the REST API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from cli.main import main
from tests.e2e.wasm import b64, hello_module


def test_schedules_create_list_update_delete(make_server, tmp_path):
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key, "-o", "json"]
    runner = CliRunner()
    code = "def main(event):\n    return event\n"
    assert (
        runner.invoke(main, [*base, "create", "ticker", "-r", "python", "--code", code]).exit_code
        == 0
    )

    every_five = ["schedules", "create", "ticker", "*/5 * * * *", "--tz", "Europe/Paris"]
    out = runner.invoke(main, [*base, *every_five, "--event", '{"kind": "report"}'])
    assert out.exit_code == 0, out.output
    schedule = json.loads(out.output)
    assert schedule["enabled"] and schedule["next_run_at"]
    with server.client() as api:
        stored = api.get(f"/api/v1/functions/ticker/schedules/{schedule['id']}").json()
        assert stored["event"] == {"kind": "report"} and stored["timezone"] == "Europe/Paris"

    listed = json.loads(runner.invoke(main, [*base, "schedules", "list", "ticker"]).output)
    assert [s["id"] for s in listed["schedules"]] == [schedule["id"]]
    table = runner.invoke(main, [*base[:-2], "-o", "table", "schedules", "list", "ticker"])
    assert "*/5 * * * *" in table.output

    out = runner.invoke(main, [*base, "schedules", "update", "ticker", schedule["id"], "--disable"])
    assert out.exit_code == 0 and json.loads(out.output)["next_run_at"] is None

    out = runner.invoke(main, [*base, "schedules", "create", "ticker", "every tuesday"])
    assert out.exit_code == 1 and "expression" in out.output  # the API's 422, not a traceback
    out = runner.invoke(main, [*base, "schedules", "create", "ticker", "@daily", "--event", "{"])
    assert out.exit_code == 2  # a usage error: the event is not JSON

    out = runner.invoke(main, [*base, "schedules", "delete", "ticker", schedule["id"]])
    assert out.exit_code == 0
    with server.client() as api:
        assert api.get("/api/v1/functions/ticker/schedules").json()["total"] == 0


def test_an_eventbridge_cron_rule_ports_unchanged(make_server):
    """`cron(0 12 ? * 2-6 *)` from an EventBridge rule: `?`, weekdays 1-7 from Sunday
    and the year field, read as EventBridge reads them, in the schedule's time zone."""
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key, "-o", "json"]
    runner = CliRunner()
    code = "def main(event):\n    return event\n"
    created = runner.invoke(main, [*base, "create", "nightly", "-r", "python", "--code", code])
    assert created.exit_code == 0, created.output
    rule = ["schedules", "create", "nightly", "cron(0 12 ? * 2-6 *)", "--tz", "Europe/Berlin"]
    out = runner.invoke(main, [*base, *rule])
    assert out.exit_code == 0, out.output
    schedule = json.loads(out.output)
    assert schedule["summary"] == "At 12:00 on Monday through Friday"
    at = datetime.fromisoformat(schedule["next_run_at"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert (at.hour, at.minute) == (12, 0) and at.isoweekday() <= 5
    assert at - datetime.now(UTC) <= timedelta(days=3, hours=1)
    out = runner.invoke(main, [*base, "schedules", "create", "nightly", "cron(0 12 ? * 8 *)"])
    assert out.exit_code == 1 and "1-7 (1 is Sunday)" in out.output


def test_every_schedule_through_the_api_and_the_cli(make_server):
    """`GET /api/v1/schedules` and `nimbus schedules list` with no NAME: every function's
    and workflow's schedules, paged and filtered as the functions list is."""
    server = make_server().start()
    base = ["--url", server.url, "--api-key", server.api_key, "-o", "json"]
    runner = CliRunner()
    made = []
    with server.client() as api:
        for name in ("billing", "nightly"):
            body = {"name": name, "runtime": "wasm", "artifact_base64": b64(hello_module())}
            assert api.post("/api/v1/functions", json=body).status_code == 201
        done = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
        flow = {"name": "digest", "definition": done}
        assert api.post("/api/v1/workflows", json=flow).status_code == 201
        for path, body in (
            ("functions/billing", {"expression": "rate(5 minutes)"}),
            ("functions/nightly", {"expression": "0 3 * * *", "timezone": "Asia/Tokyo"}),
            ("workflows/digest", {"expression": "@weekly", "enabled": False}),
            ("functions/nightly", {"expression": "@hourly", "enabled": False}),
        ):
            resp = api.post(f"/api/v1/{path}/schedules", json=body)
            assert resp.status_code == 201, resp.text
            made.append(resp.json())

        page = api.get("/api/v1/schedules", params={"limit": 2, "offset": 1}).json()
        assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
        assert [s["id"] for s in page["schedules"]] == [made[1]["id"], made[2]["id"]]
        nightly, digest = page["schedules"]
        assert (nightly["function_name"], nightly["timezone"]) == ("nightly", "Asia/Tokyo")
        assert nightly["next_run_at"] == made[1]["next_run_at"]
        assert (digest["workflow_name"], digest["function_name"]) == ("digest", None)
        off = api.get("/api/v1/schedules", params={"enabled": "false", "name": "night"}).json()
        assert [s["id"] for s in off["schedules"]] == [made[3]["id"]]
        bad = api.get("/api/v1/schedules", params={"limit": 500})
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "limit"

    out = runner.invoke(main, [*base, "schedules", "list"])
    assert out.exit_code == 0, out.output
    assert [s["id"] for s in json.loads(out.output)["schedules"]] == [m["id"] for m in made]
    out = runner.invoke(main, [*base, "schedules", "list", "--enabled", "--name", "bill"])
    assert [s["id"] for s in json.loads(out.output)["schedules"]] == [made[0]["id"]]
    table = runner.invoke(main, [*base[:-2], "-o", "table", "schedules", "list", "--limit", "3"])
    assert table.exit_code == 0, table.output
    assert "billing" in table.output and "workflow digest" in table.output
    assert "3 of 4 (--offset for more)" in table.output
