"""Every setting a server reads is one an operator can find in the README, and a bad one
stops `nimbus serve` with a message naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from gateway.settings import Settings, SettingsError, load_settings
from tests.e2e.server import free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README.read_text()))
    names = [name.upper() for name in Settings.model_fields]
    missing = [name for name in names if name not in documented]
    assert missing == [], f"settings the README does not mention: {missing}"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"WORKERS": "two"}, "WORKERS='two': Input should be a valid integer"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose': one of critical, error, warning"),
        ({"MAX_CONCURRENT": "-1"}, "MAX_CONCURRENT='-1': Input should be greater than or equal"),
        ({"NIMBUS_STORE": "s4://x"}, "NIMBUS_STORE='s4://x': file://PATH or s3://BUCKET/PREFIX"),
        ({"RATE_LIMIT_PER_KEY": "lots"}, "RATE_LIMIT_PER_KEY='lots': couldn't parse"),
        ({"DEFAULT_MEMORY_MB": "8"}, "DEFAULT_MEMORY_MB (8) must lie between MIN_MEMORY_MB"),
        ({"DEFAULT_TIMEOUT_SEC": "900"}, "DEFAULT_TIMEOUT_SEC (900) is over MAX_TIMEOUT_SEC"),
        ({"PUBLIC_URL": "nimbus.example.com"}, "PUBLIC_URL='nimbus.example.com': an http://"),
    ],
)
def test_nimbus_serve_names_a_bad_setting_and_exits_2_without_a_traceback(
    env, said, tmp_path, monkeypatch
):
    """A typo'd value used to end `nimbus serve` in a pydantic traceback (WORKERS=two,
    LOG_LEVEL=verbose), or in a worker that failed to boot, its traceback in each worker's
    log (MAX_CONCURRENT=-1, RATE_LIMIT_PER_KEY=lots), or was taken (DEFAULT_MEMORY_MB=8)."""
    monkeypatch.chdir(tmp_path)  # no nimbus.toml
    # A key too short to start with: were the bad setting taken, serve still stops at once.
    for name, value in {"DATA_DIR": str(tmp_path), "NIMBUS_API_KEY": "short", **env}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2, result.output
    assert "bad settings" in result.output and said in result.output, result.output
    assert "Traceback" not in result.output and "pydantic" not in result.output


def test_a_bad_secret_setting_is_named_but_not_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    with pytest.raises(SettingsError) as caught:
        load_settings(nimbus_api_key=["sekrit-value"], workers="x")
    assert "NIMBUS_API_KEY: " in str(caught.value) and "sekrit" not in str(caught.value)
    assert "WORKERS='x'" in str(caught.value)  # every bad setting at once


def test_a_nimbus_toml_that_is_not_toml_and_a_data_dir_that_cannot_be_made_exit_2(
    tmp_path, monkeypatch
):
    """Both ended `nimbus serve` in a traceback (tomllib's, pathlib's)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NIMBUS_API_KEY", "short")  # were it taken, serve stops at once
    (tmp_path / "nimbus.toml").write_text('workers = 2\nport = "x\n')
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2, result.output
    assert "nimbus.toml is not TOML: Illegal character" in result.output
    assert "line 2" in result.output and "Traceback" not in result.output

    (tmp_path / "nimbus.toml").unlink()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "a-file" / "data"))
    monkeypatch.setenv("PORT", str(free_port()))  # checked before the folder
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2, result.output
    assert f"DATA_DIR='{tmp_path}/a-file/data': Not a directory" in result.output
