"""The shared Python runtime in the sandbox: real component, real stdlib mount, no mocks.

The runtime is built once per machine by scripts/runtimes/python.sh (make
install); these tests build it if it is missing (~2 min, once).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import textwrap
import time

import pytest

from compiler.runtimes import python_runtime as rt
from sandbox import LOG_LIMIT_BYTES, Deployment, Mount, Sandbox, SandboxConfig
from store import LocalStore, errors

from .conftest import REPO, put_wasm

_n = iter(range(1, 1_000_000))
# Building the runtime when it is missing takes minutes (make install does it first).
pytestmark = pytest.mark.timeout(600)


def ensure_runtime() -> rt.PythonRuntime:
    found = rt.installed()
    if found is None:
        subprocess.run([str(REPO / "scripts" / "runtimes" / "python.sh")], check=True)
        found = rt.installed()
    assert found is not None
    return found


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """(sandbox, store, runtime key/sha, stdlib mount) in a fresh store, with the seed cache."""
    built = ensure_runtime()
    store = LocalStore(tmp_path_factory.mktemp("pyrt-store"))
    key, sha = put_wasm(store, built.wasm.read_bytes())
    stdlib = Mount(rt.STDLIB_MOUNT, *put_wasm(store, built.stdlib.read_bytes()))
    sandbox = Sandbox(
        store,
        SandboxConfig(
            cache_dir=tmp_path_factory.mktemp("pyrt-cache"), seed_cache_dirs=(rt.SEED_CACHE_DIR,)
        ),
    )
    sandbox.precompile(key, sha)  # from the seed: no 30 s compile
    yield sandbox, store, (key, sha), stdlib
    sandbox.close()


@pytest.fixture
def deploy(runtime):
    _, store, (key, sha), stdlib = runtime

    def deploy_(files: dict | str, handler: str = "handler.main", deps=None, **kw) -> Deployment:
        if isinstance(files, str):
            files = {"handler.py": textwrap.dedent(files)}
        source_key, source_sha = put_wasm(store, json.dumps(files).encode())
        mounts = (stdlib,) if deps is None else (stdlib, Mount(rt.DEPS_MOUNT, *deps))
        fields = dict(function_id=f"fn_py{next(_n)}", function_name="py-fn", version=1,
                      memory_mb=64, timeout_sec=5.0)  # fmt: skip
        fields.update(kw)
        return Deployment(
            artifact_key=key,
            artifact_sha256=sha,
            kind="runtime",
            handler=handler,
            source_key=source_key,
            source_sha256=source_sha,
            mounts=mounts,
            **fields,
        )

    return deploy_


def invoke(sandbox: Sandbox, dep: Deployment, event: object = None, **context):
    return sandbox.invoke(dep, json.dumps(event if event is not None else {}).encode(), context)


def ok(sandbox: Sandbox, dep: Deployment, event: object = None, **context):
    result = invoke(sandbox, dep, event, **context)
    assert result.error is None, result.error
    return json.loads(result.output)


def test_handler_gets_event_and_context(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        def main(event, context):
            return {"got": event, "name": context["function_name"],
                    "attr": context.invocation_id,
                    "left": 0 < context.get_remaining_time_in_millis() <= 5000}
        """,
        function_name="ctx-fn",
    )
    out = ok(sandbox, dep, {"a": [1, 2]}, invocation_id="inv_1")
    assert out == {"got": {"a": [1, 2]}, "name": "ctx-fn", "attr": "inv_1", "left": True}


def test_context_has_lambdas_names_and_keeps_its_json(runtime, deploy):
    """Lambda's context attributes read the platform's keys (they raised AttributeError);
    the dict, and so its JSON, holds only the platform's and the caller's keys."""
    sandbox = runtime[0]
    dep = deploy(
        """
        import json
        def main(event, context):
            missing = {}
            for name in ("invoked_function_arn", "log_group_name", "log_stream_name"):
                try:
                    getattr(context, name)
                except AttributeError as exc:
                    missing[name] = str(exc)
            context.log("via context.log\\n")
            return {"id": context.aws_request_id, "version": context.function_version,
                    "memory": context.memory_limit_in_mb, "name": context.function_name,
                    "keys": sorted(json.loads(json.dumps(context))), "missing": missing,
                    "caller": context.tenant}
        """,
        function_name="ctx-fn",
        version=7,
        memory_mb=48,
    )
    result = invoke(sandbox, dep, invocation_id="inv_ctx", tenant="t1")
    assert result.error is None, result.error
    out = json.loads(result.output)
    assert (out["id"], out["version"], out["memory"]) == ("inv_ctx", "7", 48)
    assert out["name"] == "ctx-fn" and out["caller"] == "t1"
    assert out["keys"] == ["deadline_ms", "function_name", "invocation_id",
                           "memory_limit_mb", "tenant", "version"]  # fmt: skip
    assert "context.function_name" in out["missing"]["invoked_function_arn"]
    assert "invocation_id=" in out["missing"]["log_stream_name"]
    assert "/logs" in out["missing"]["log_group_name"]
    assert result.logs == b"via context.log\n"


_LOG_LINE = (
    r"\[(?P<level>[A-Z]+)\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"  # [INFO]<tab>UTC time
    r"\t(?P<id>[^\t]*)\t(?P<msg>.*)"  # <tab>invocation id<tab>message
)


def _log_records(logs: bytes) -> list[tuple[str, str, str]]:
    """(level, invocation id, message) of each line written in Lambda's log format."""
    found = [re.fullmatch(_LOG_LINE, line) for line in logs.decode().splitlines()]
    return [(m["level"], m["id"], m["msg"]) for m in found if m]


def test_logging_writes_the_calls_log_with_its_invocation_id(runtime, deploy):
    """`logging` works as on Lambda: the root logger has a handler writing
    "[LEVEL] <UTC time> <id> <message>" (tab-separated), at WARNING until the code lowers it.
    Before, `.info()` after setLevel printed nothing and `.warning()` printed the bare
    message through logging's last resort."""
    sandbox = runtime[0]
    dep = deploy(
        """
        import logging
        log = logging.getLogger(__name__)
        def main(event, context):
            logging.info("not shown: the root logger is at WARNING")
            log.warning("careful %s", event["n"])
            logging.getLogger().setLevel(logging.INFO)
            log.info("now shown")
            log.debug("not shown: below INFO")
            try:
                1 / 0
            except ZeroDivisionError:
                log.exception("failed")
            return len(logging.getLogger().handlers)
        """
    )
    result = invoke(sandbox, dep, {"n": 3}, invocation_id="inv_log1")
    assert result.error is None, result.error
    assert json.loads(result.output) == 1
    assert _log_records(result.logs) == [
        ("WARNING", "inv_log1", "careful 3"),
        ("INFO", "inv_log1", "now shown"),
        ("ERROR", "inv_log1", "failed"),
    ]
    text = result.logs.decode()
    assert "not shown" not in text and "ZeroDivisionError: division by zero" in text
    # Another call of the same function, on a fresh instance: WARNING again, its own id.
    result = invoke(sandbox, dep, {"n": 4}, invocation_id="inv_log2")
    assert _log_records(result.logs)[0] == ("WARNING", "inv_log2", "careful 4")


def test_a_reused_instance_logs_each_calls_own_id(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        import logging
        logging.getLogger().setLevel(logging.INFO)
        logging.info("loaded")
        calls = 0
        def main(event, context):
            global calls
            calls += 1
            logging.info("call %d", calls)
            return calls
        """,
        reuse_instance=True,
    )
    logs = []
    for n in (1, 2, 3):
        result = invoke(sandbox, dep, invocation_id=f"inv_r{n}")
        assert result.error is None, result.error
        logs.append(_log_records(result.logs))
    assert logs[0] == [("INFO", "inv_r1", "loaded"), ("INFO", "inv_r1", "call 1")]
    assert logs[1:] == [[("INFO", "inv_r2", "call 2")], [("INFO", "inv_r3", "call 3")]]


def test_logging_level_from_env_and_basic_config_still_configures(runtime, deploy):
    """AWS_LAMBDA_LOG_LEVEL sets the root logger's level (Lambda's advanced logging
    controls); `logging.basicConfig` replaces the runtime's handler (on Lambda it
    silently does nothing), so functions configured that way log as they did."""
    sandbox = runtime[0]
    leveled = deploy(
        "import logging\ndef main(event):\n    logging.debug('deep')\n    return 1\n",
        env_vars={"AWS_LAMBDA_LOG_LEVEL": "trace"},
    )
    result = invoke(sandbox, leveled, invocation_id="inv_env")
    assert _log_records(result.logs) == [("DEBUG", "inv_env", "deep")]
    configured = deploy(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="%(levelname)s|%(message)s")
        def main(event):
            logging.info("mine")
            return len(logging.getLogger().handlers)
        """
    )
    result = invoke(sandbox, configured, invocation_id="inv_basic")
    assert json.loads(result.output) == 1
    assert result.logs.decode() == "INFO|mine\n"


def test_one_argument_handler_and_logs(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        import sys
        def main(event):
            print("to stdout")
            print("to stderr", file=sys.stderr)
            return event["n"] * 2
        """
    )
    result = invoke(sandbox, dep, {"n": 21})
    assert result.output == b"42"
    assert b"to stdout" in result.logs and b"to stderr" in result.logs


def test_logging_past_the_log_cap_returns_the_result(runtime, deploy):
    """Each print past the 1 MB cap raised "OSError: [Errno 29] I/O error" in the guest:
    the call failed instead of its log being cut. Long lines stay whole (a write is never
    cut short: the runtime's unbuffered streams would lose the rest)."""
    sandbox = runtime[0]
    dep = deploy(
        """
        import sys
        def main(event):
            print("w" * 20000, file=sys.stderr)
            for i in range(3000):
                print("x" * 999)
            return "done"
        """
    )
    result = invoke(sandbox, dep)
    assert result.error is None, result.error
    assert result.output == b'"done"'
    assert result.logs.startswith(b"w" * 20000 + b"\n" + b"x" * 999 + b"\n")
    dropped = 20001 + 3000 * 1000 - LOG_LIMIT_BYTES
    note = b"\n[nimbus: log truncated at 1 MB, %d more bytes dropped]\n" % dropped
    assert result.logs.endswith(b"x" + note)


def test_two_modules_and_a_package(runtime, deploy):
    sandbox = runtime[0]
    files = {
        "handler.py": "import helpers\nfrom lib.text import shout\n"
        "def main(event):\n    return shout(helpers.greet(event['name']))\n",
        "helpers.py": "def greet(name):\n    return f'hello {name}'\n",
        "lib/text.py": "def shout(s):\n    return s.upper() + '!'\n",
    }
    assert ok(sandbox, deploy(files), {"name": "ada"}) == "HELLO ADA!"


def test_exception_has_type_message_and_the_users_lines(runtime, deploy):
    sandbox = runtime[0]
    files = {
        "handler.py": "import helpers\n\ndef main(event):\n    return helpers.check(event)\n",
        "helpers.py": "def check(event):\n    raise ValueError(f'bad event {event}')\n",
    }
    result = invoke(sandbox, deploy(files), {"x": 1})
    assert result.error is not None
    assert result.error.type == "ValueError"
    assert result.error.message == "bad event {'x': 1}"
    stack = "\n".join(result.error.stack)
    assert 'File "handler.py", line 4, in main' in stack
    assert 'File "helpers.py", line 2, in check' in stack
    assert "raise ValueError(f'bad event {event}')" in stack
    assert "runner.py" not in stack


@pytest.mark.parametrize(
    ("result", "type_", "says"),
    [
        ('{"items": [1, 2, {1, 2}]}', "TypeError", 'result["items"][2]: set'),
        ("{1, 2}", "TypeError", "result: set"),
        ('{"at": float("nan")}', "ValueError", 'result["at"]: float nan'),
        ("cycle", "ValueError", 'result["me"][0]: a circular reference to result'),
        ('{(1, 2): "x"}', "TypeError", "result: a key of type tuple ((1, 2))"),
    ],
)
def test_a_result_that_is_not_json_says_where_in_the_return_value(
    runtime, deploy, result, type_, says
):
    """The encoder's "Object of type set is not JSON serializable" with only
    /python/json/encoder.py frames never said it was the handler's return value."""
    dep = deploy(
        f"""
        import math

        def main(event):
            cycle = {{}}
            cycle["me"] = [cycle]
            return {result}
        """
    )
    error = invoke(runtime[0], dep).error
    assert error is not None
    assert error.type == type_
    assert error.message.startswith("the handler's return value could not be encoded as JSON: ")
    assert f"JSON: {says} (" in error.message
    assert error.stack[1:3] == ['  File "handler.py", line 4, in main', "    def main(event):"]
    assert not any("json" in line and "encoder" in line for line in error.stack), error.stack
    assert error.stack[-1] == f"{type_}: {error.message}"


def test_an_error_the_guest_makes_huge_is_bounded(runtime, deploy):
    """The guest chooses its error's size: a 10 MB message and a 100,000-character type
    made a 21 MB 500 body, and as large an async invocation record in the store. They are
    cut as a compiled guest's error record is (`_outcome.reported_failure`)."""
    sandbox = runtime[0]
    dep = deploy(
        """
        def main(event):
            kind = type("E" * 100_000, (Exception,), {})
            raise kind("m" * (10 << 20) + "\\n" + "s" * 5000)
        """
    )
    error = invoke(sandbox, dep).error
    assert error is not None
    assert error.type == "E" * 200
    assert error.message.startswith("m" * 1000) and len(error.message) <= 64 * 1024 + 100
    assert error.message.endswith("more characters]")
    assert 0 < len(error.stack) <= 64 and all(len(line) <= 1000 for line in error.stack)


def test_stdlib_modules_import_at_run_time(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        def main(event):
            import collections, decimal, difflib, email.utils, heapq, statistics, uuid
            import sys
            return {
                "common": collections.Counter("abracadabra").most_common(1),
                "mean": statistics.mean([1, 2, 3, 4]),
                "dec": str(decimal.Decimal("1.10") + decimal.Decimal("2.20")),
                "uuid": len(str(uuid.uuid4())),
                "ratio": difflib.SequenceMatcher(None, "abcd", "abce").ratio(),
                "date": email.utils.format_datetime(email.utils.parsedate_to_datetime(
                    "Tue, 01 Jul 2025 10:00:00 +0000")),
                "heap": heapq.nsmallest(2, [5, 1, 4]),
                "version": sys.version_info[:2],
            }
        """
    )
    out = ok(sandbox, dep)
    assert out == {
        "common": [["a", 5]],
        "mean": 2.5,
        "dec": "3.30",
        "uuid": 36,
        "ratio": 0.75,
        "date": "Tue, 01 Jul 2025 10:00:00 +0000",
        "heap": [1, 4],
        "version": [3, 14],
    }


def test_each_invocation_gets_new_random_numbers(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        import random, uuid
        def main(event):
            return [random.random(), random.randint(0, 10**9), str(uuid.uuid4())]
        """
    )
    first, second = ok(sandbox, dep), ok(sandbox, dep)
    assert all(a != b for a, b in zip(first, second, strict=True))


def test_env_vars_visible_host_env_not(runtime, deploy):
    sandbox = runtime[0]
    os.environ.setdefault("NIMBUS_HOST_SECRET", "x")
    dep = deploy("import os\ndef main(e):\n    return dict(os.environ)\n", env_vars={"A": "1"})
    assert ok(sandbox, dep) == {"A": "1"}


def test_async_handler_and_asyncio_sleep(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        import asyncio
        async def twice(x):
            await asyncio.sleep(0.01)
            return x * 2
        async def main(event):
            return sum(await asyncio.gather(twice(1), twice(2)))
        """
    )
    assert ok(sandbox, dep) == 6


def _wait_unstuck(sandbox: Sandbox) -> None:
    deadline = time.monotonic() + 3
    while sandbox.stats()["stuck_threads"] and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize(
    "body",
    [
        "while True:\n        pass",
        "import time\n    time.sleep(60)",
        "from time import sleep\n    sleep(60)",
        "import asyncio\n    asyncio.run(asyncio.sleep(60))",
    ],
    ids=["loop", "sleep", "from-import-sleep", "asyncio-sleep"],
)
def test_loops_and_sleeps_stop_at_the_deadline(runtime, deploy, body):
    sandbox = runtime[0]
    dep = deploy(f"def main(event):\n    {body}\n", timeout_sec=1.0)
    started = time.monotonic()
    with pytest.raises(errors.Timeout):
        invoke(sandbox, dep)
    assert 0.95 <= time.monotonic() - started < 2.0
    # NOTE: the runtime bounds sleeps itself, so no guarded thread is left behind.
    _wait_unstuck(sandbox)
    assert sandbox.stats()["stuck_threads"] == 0


def test_memory_hog_is_memory_limit_exceeded(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        def main(event):
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        """,
        memory_mb=48,
    )
    with pytest.raises(errors.NimbusError) as caught:
        invoke(sandbox, dep)
    assert caught.value.code == "memory_limit_exceeded"
    assert ok(sandbox, deploy("def main(e):\n    return 1\n")) == 1  # the worker is fine


def test_functions_share_nothing(runtime, deploy):
    sandbox = runtime[0]
    meddler = deploy(
        """
        import json, sys
        json.dumps = lambda *a, **k: '"hijacked"'
        sys.modules["secret_of_a"] = 42
        def main(event):
            global COUNT
            COUNT = globals().get("COUNT", 0) + 1
            return COUNT
        """
    )
    other = deploy("import sys\ndef main(e):\n    return 'secret_of_a' in sys.modules\n")
    assert invoke(sandbox, meddler).output == b'"hijacked"'
    assert ok(sandbox, other) is False
    assert invoke(sandbox, meddler).output == b'"hijacked"'  # a fresh instance each time


def test_no_host_files_and_the_stdlib_is_read_only(runtime, deploy):
    sandbox = runtime[0]
    dep = deploy(
        """
        import os
        def attempt(fn):
            try:
                fn()
                return "allowed"
            except OSError as exc:
                return type(exc).__name__
        def main(event):
            return {
                "passwd": attempt(lambda: open("/etc/passwd").read()),
                "escape": attempt(lambda: open("/python/../../etc/passwd").read()),
                "write": attempt(lambda: open("/python/evil.py", "w").write("x")),
                "root": attempt(lambda: os.listdir("/")),
            }
        """
    )
    out = ok(sandbox, dep)
    assert out["passwd"] != "allowed" and out["escape"] != "allowed"
    assert out["write"] != "allowed"


def _deps_archive(store: LocalStore) -> tuple[str, str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in {
            "tinypkg/__init__.py": "from .core import answer\n__version__ = '1.2.3'\n",
            "tinypkg/core.py": "def answer():\n    return 42\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return put_wasm(store, buf.getvalue())


def test_bundled_dependencies_are_importable(runtime, deploy):
    sandbox, store = runtime[0], runtime[1]
    dep = deploy(
        "import tinypkg\ndef main(e):\n    return [tinypkg.answer(), tinypkg.__version__]\n",
        deps=_deps_archive(store),
    )
    assert ok(sandbox, dep) == [42, "1.2.3"]


def test_check_reports_the_python_version(runtime, deploy):
    facts = json.loads(runtime[0].check(deploy("def main(event):\n    return 1\n")))
    assert facts["python"].startswith("3.14")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"handler.py": "def main(event):\n    return 1 +\n"}, "handler.py, line 2"),
        (
            {"handler.py": "import util\ndef main(e):\n    pass\n", "util.py": "x = (\n"},
            "util.py, line 1",
        ),
        ({"handler.py": "def other(event):\n    pass\n"}, "defines no `main`"),
        ({"main.py": "def main(event):\n    pass\n"}, "no handler.py"),
    ],
    ids=["syntax", "syntax-in-module", "no-function", "no-module"],
)
def test_check_refuses_bad_source(runtime, deploy, files, expected):
    with pytest.raises(errors.Invalid) as caught:
        runtime[0].check(deploy(files))
    assert expected in caught.value.message


def test_check_accepts_new_syntax(runtime, deploy):
    """The guest's own 3.14 compiler decides, not the host's."""
    source = "type Pair = tuple[int, int]\ndef main[T](event: T) -> T:\n    return event\n"
    runtime[0].check(deploy({"handler.py": source}))


def test_the_minimum_memory_is_enough(runtime, deploy):
    """gateway/services/functions.py lets a python function have 32 MB: the runtime fits in it."""
    dep = deploy(
        "import email.utils, difflib, json\ndef main(e):\n    return len(json.dumps([1] * 1000))\n",
        memory_mb=32,
    )
    assert ok(runtime[0], dep) == 3000
