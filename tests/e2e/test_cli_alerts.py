"""`nimbus alerts` against a real server notifying a real receiver on 127.0.0.1: a rule
made with the CLI fires, its webhook is signed with the secret the CLI printed, and the
CLI shows the state, the history and every change."""

from __future__ import annotations

import json
import re

from tests.e2e import wasm as w
from tests.e2e.test_cli_versions import Nimbus
from tests.e2e.test_observability import deploy, once
from tests.webhook_receiver import webhook_receiver


def test_an_alert_made_with_the_cli_fires_and_the_cli_shows_it(make_server):
    server = make_server({"ALERT_WEBHOOK_ALLOW_PRIVATE": "true"}).start()
    nimbus = Nimbus(server)
    deploy(server, "quiet", w.ECHO_WAT)
    with webhook_receiver() as receiver:
        # nobody calls `quiet`: "fewer than 1 call in 10 s" fires at its first evaluation
        out = nimbus("alerts", "create", "quiet fn", "invocations < 1", "-f", "quiet",
                     "--window", "10s", "--webhook", receiver.url, output="table")  # fmt: skip
        assert out.exit_code == 0, out.output
        assert "invocations < 1" in out.output and "quiet" in out.output
        secret = re.search(r"secret\s+(\S+)", out.stdout)[1]  # printed once, here
        assert "shown once" in out.stderr
        alert = nimbus.json("alerts", "list")["alerts"][0]
        assert alert["name"] == "quiet fn" and alert["function"]["name"] == "quiet"
        assert "secret" not in alert["notify"] or alert["notify"]["secret"] is None

        fired = receiver.wait_for(1, timeout=40)
        assert fired and fired[0].json["state"] == "firing", "no notification in 40 s"
        assert fired[0].signed_with(secret)
    firing = nimbus.json("alerts", "list", "--state", "firing")["alerts"]
    assert [a["id"] for a in firing] == [alert["id"]]
    assert nimbus.json("alerts", "list", "--state", "ok")["alerts"] == []
    listed = nimbus("alerts", "list", output="table").output
    assert "quiet fn" in listed and "firing" in listed and "invocations < 1" in listed
    history = nimbus("alerts", "history", alert["id"], output="table").output
    assert "ok → firing" in history and "delivered" in history

    changed = nimbus.json("alerts", "update", alert["id"], "--condition", "p99_ms >= 250",
                          "--window", "1m", "--for", "30s")  # fmt: skip
    assert (changed["metric"], changed["op"], changed["threshold"]) == ("p99_ms", ">=", 250)
    stored = once(server, "GET", f"/api/v1/alerts/{alert['id']}").json()
    assert (stored["window_sec"], stored["for_sec"], stored["metric"]) == (60, 30, "p99_ms")
    # by the name `alerts list` shows (it was "alert 'quiet fn' not found")
    assert nimbus.json("alerts", "disable", "quiet fn")["enabled"] is False
    assert once(server, "GET", f"/api/v1/alerts/{alert['id']}").json()["enabled"] is False
    assert "disabled" in nimbus("alerts", "list", output="table").output
    assert nimbus.json("alerts", "enable", alert["id"])["enabled"] is True

    assert nimbus("alerts", "update", alert["id"]).exit_code == 2  # nothing to change
    assert nimbus("alerts", "update", alert["id"], "--secret", "s" * 16).exit_code == 2
    assert nimbus("alerts", "create", "x", "errors are high", "--window", "1m",
                  "--webhook", receiver.url).exit_code == 2  # fmt: skip
    out = nimbus("alerts", "create", "x", "nope > 1", "--window", "1m", "--webhook", receiver.url)
    assert out.exit_code == 1 and "metric" in json.loads(out.stdout)["error"]["message"]
    out = nimbus("alerts", "create", "x", "p99_ms > 1", "--window", "15s",
                 "--webhook", receiver.url)  # fmt: skip
    assert out.exit_code == 1 and "window_sec" in json.loads(out.stdout)["error"]["message"]

    assert nimbus.json("alerts", "delete", alert["id"]) == {"deleted": alert["id"]}
    assert once(server, "GET", f"/api/v1/alerts/{alert['id']}").status_code == 404
    out = nimbus("alerts", "get", alert["id"])
    assert out.exit_code == 1 and json.loads(out.stdout)["error"]["code"] == "not_found"
