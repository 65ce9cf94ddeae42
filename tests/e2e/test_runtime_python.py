"""Python functions end to end on the shared runtime: a real server on the local store."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from compiler.runtimes import python_runtime as rt
from tests.e2e.compiled import log_lines
from tests.e2e.server import REPO, NimbusProcess

EXAMPLE = REPO / "examples" / "python" / "wordstats"
# The runtime is built by make install; building it here when missing takes minutes.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[NimbusProcess]:
    if rt.installed() is None:
        subprocess.run([str(REPO / "scripts" / "runtimes" / "python.sh")], check=True)
    proc = NimbusProcess(tmp_path_factory.mktemp("py-local") / "data")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api(server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def create(api: httpx.Client, name: str, files, **extra) -> httpx.Response:
    if isinstance(files, str):
        files = {"handler.py": files}
    body = {"name": name, "runtime": "python", "files": files, **extra}
    return api.post("/api/v1/functions?wait=true", json=body)


def deployed(api: httpx.Client, name: str, files, **extra) -> dict:
    resp = create(api, name, files, **extra)
    assert resp.status_code == 201, resp.text
    fn = resp.json()
    assert fn["status"] == "active", fn
    return fn


def invoke(api: httpx.Client, name: str, event=None) -> httpx.Response:
    return api.post(f"/api/v1/functions/{name}/invoke", json=event if event is not None else {})


def build_log(api: httpx.Client, name: str) -> str:
    return api.get(f"/api/v1/functions/{name}/build").json()["log"]


def test_example_two_modules_ready_and_invoked(api):
    files = {p.name: p.read_text() for p in EXAMPLE.glob("*.py")}
    settings = json.loads((EXAMPLE / "function.json").read_text())
    # The first Python build on a fresh store stores the runtime and its stdlib
    # once; later deploys only store the source.
    deployed(api, "py-warmup", "def main(event):\n    return 1\n")
    started = time.monotonic()
    fn = deployed(api, "wordstats", files, **{k: v for k, v in settings.items() if k != "runtime"})
    ready_sec = time.monotonic() - started
    assert fn["runtime_version"].startswith("CPython 3.14"), fn
    assert ready_sec < 5, f"create -> ready took {ready_sec:.2f}s"
    resp = invoke(api, "wordstats", {"text": "the cat and the hat and the bat"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "words": 8,
        "top": [["the", 3], ["and", 2], ["cat", 1]],
        "mean_length": 3,
        "function": "wordstats",
    }
    assert resp.headers["X-Nimbus-Version"] == "1"


def test_requirements_are_bundled_and_logged(api):
    source = (
        "import importlib.metadata, tabulate\n"
        "def main(event):\n"
        "    table = tabulate.tabulate([[1, 2]], headers=['a', 'b'])\n"
        "    return {'version': importlib.metadata.version('tabulate'), 'table': table}\n"
    )
    started = time.monotonic()
    fn = deployed(api, "py-deps", source, requirements=["tabulate>=0.9"])
    assert time.monotonic() - started < 120
    log = build_log(api, "py-deps")
    resp = invoke(api, "py-deps")
    assert resp.status_code == 200, resp.text
    version = resp.json()["version"]
    assert f"resolved tabulate=={version}" in log, log
    assert resp.json()["table"].splitlines()[0].split() == ["a", "b"]
    assert fn["code_size"] < 1000  # the source is what is stored per function


def test_syntax_error_fails_the_build_naming_the_line(api):
    resp = create(api, "py-syntax", {"handler.py": "def main(event):\n    x = 1\n    return x +\n"})
    assert resp.status_code == 201
    fn = resp.json()
    assert fn["status"] == "failed"
    error = fn["latest_build"]["error"]
    assert "SyntaxError" in error and "handler.py, line 3" in error, error


def test_bad_requirement_is_refused_at_once(api):
    # was a 201, then a failed build; the build still checks (records made before)
    resp = create(api, "py-badreq", "def main(e):\n    pass\n", requirements=["--index-url=x"])
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"][0]["field"] == "requirements"
    assert "requirement '--index-url=x' is not PEP 508" in resp.json()["error"]["message"]


def test_exception_is_a_function_error_with_the_users_traceback(api):
    files = {
        "handler.py": "from checks import validate\n\n"
        "def main(event):\n    return validate(event)\n",
        "checks.py": "def validate(event):\n    raise KeyError('name')\n",
    }
    deployed(api, "py-raise", files)
    resp = invoke(api, "py-raise", {"x": 1})
    assert resp.status_code == 500
    assert resp.headers["X-Nimbus-Function-Error"] == "true"
    error = resp.json()["error"]
    assert error["code"] == "function_error"
    assert (error["type"], error["message"]) == ("KeyError", "'name'")
    stack = "\n".join(error["stack"])
    assert 'File "handler.py", line 4, in main' in stack
    assert 'File "checks.py", line 2, in validate' in stack


def test_data_files_are_readable_beside_the_handler_and_not_writable(api):
    files = {
        "handler.py": (
            "import json\n"
            "from pathlib import Path\n"
            "from lib import rates\n"
            "HERE = Path(__file__).parent\n"
            "PRICES = json.loads((HERE / 'data.json').read_text())\n"
            "def main(event):\n"
            "    try:\n"
            "        open(HERE / 'data.json', 'w')\n"
            "        writable = True\n"
            "    except OSError:\n"
            "        writable = False\n"
            "    with open('templates/greeting.txt') as f:  # relative: the function's folder\n"
            "        greeting = f.read().strip()\n"
            "    return {'price': PRICES[event['item']] * rates()['EUR'],\n"
            "            'greeting': greeting, 'writable': writable}\n"
        ),
        "data.json": '{"pen": 2}',
        "templates/greeting.txt": "hello from a data file\n",
        "lib/__init__.py": (
            "import os\n"
            "def rates():\n"
            "    path = os.path.join(os.path.dirname(__file__), 'rates.csv')\n"
            "    return {k: float(v) for k, v in (line.split(',') for line in open(path))}\n"
        ),
        "lib/rates.csv": "EUR,1.5\n",
    }
    deployed(api, "py-data", files)
    resp = invoke(api, "py-data", {"item": "pen"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"price": 3.0, "greeting": "hello from a data file", "writable": False}


def test_stdlib_modules_the_snapshot_never_imported(api):
    source = """
import difflib, email.utils, heapq, uuid
from collections import Counter
from decimal import Decimal
import statistics

def main(event):
    return {
        "top": Counter("mississippi").most_common(2),
        "median": statistics.median([5, 1, 3]),
        "sum": str(Decimal("0.1") + Decimal("0.2")),
        "uuid4": uuid.uuid4().version,
        "diff": difflib.get_close_matches("appel", ["ape", "apple", "peach"])[0],
        "when": email.utils.parsedate_to_datetime("Mon, 20 Nov 1995 19:12:08 -0500").year,
        "heap": heapq.nlargest(2, [1, 9, 4]),
    }
"""
    deployed(api, "py-stdlib", source)
    resp = invoke(api, "py-stdlib")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"top": [["i", 4], ["s", 4]], "median": 3, "sum": "0.3",
                           "uuid4": 4, "diff": "apple", "when": 1995, "heap": [9, 4]}  # fmt: skip


def test_logging_past_the_log_cap_still_returns_the_result(api):
    """The log is cut at 1 MB and the call goes on: each print past the cap raised
    "OSError: [Errno 29] I/O error" in the guest, a 500 instead of the result."""
    deployed(
        api,
        "py-chatty",
        "import sys\n"
        "def main(event):\n"
        "    print('w' * 5000, file=sys.stderr)\n"
        "    for i in range(3000):\n"
        "        print('x' * 999)\n"
        "    return {'done': True}\n",
    )
    resp = invoke(api, "py-chatty")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"done": True}
    lines = log_lines(api, "py-chatty", resp)
    assert lines[0] == "w" * 5000 and lines[1] == "x" * 999
    dropped = 5001 + 3000 * 1000 - (1 << 20)
    assert f"[nimbus: log truncated at 1 MB, {dropped} more bytes dropped]" in lines[-3:]


def test_logging_and_lambdas_context_names(api):
    """A Lambda handler's `logger.info` shows in the call's log with the level and the
    invocation id (it logged nothing), and Lambda's context names read Nimbus's keys."""
    deployed(
        api,
        "py-lambda-log",
        "import logging\n"
        "logger = logging.getLogger()\n"
        "logger.setLevel(logging.INFO)\n"
        "def lambda_handler(event, context):\n"
        "    logger.info('order %s', event['id'])\n"
        "    return [context.aws_request_id, context.function_version,\n"
        "            context.memory_limit_in_mb]\n",
        handler="handler.lambda_handler",
        memory_mb=64,
    )
    for order in (1, 2):
        resp = invoke(api, "py-lambda-log", {"id": order})
        assert resp.status_code == 200, resp.text
        invocation_id = resp.headers["X-Nimbus-Invocation-Id"]
        assert resp.json() == [invocation_id, resp.headers["X-Nimbus-Version"], 64]
        [line] = log_lines(api, "py-lambda-log", resp)
        level, when, logged_id, message = line.split("\t")
        assert (level, logged_id, message) == ("[INFO]", invocation_id, f"order {order}")
        assert when.endswith("Z") and when[:2] == "20", line


def test_two_invocations_get_different_random_numbers(api):
    deployed(api, "py-random", "import random\ndef main(event):\n    return random.random()\n")
    values = {invoke(api, "py-random").json() for _ in range(3)}
    assert len(values) == 3


@pytest.mark.parametrize(
    ("name", "body"),
    [("py-loop", "while True:\n        pass"), ("py-sleep", "import time\n    time.sleep(60)")],
)
def test_loop_and_sleep_answer_504_at_the_deadline(api, name, body):
    deployed(api, name, f"def main(event):\n    {body}\n", timeout_sec=2)
    started = time.monotonic()
    resp = invoke(api, name)
    elapsed = time.monotonic() - started
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"]["code"] == "timeout"
    assert 1.9 <= elapsed < 4, elapsed
    assert invoke(api, "py-random").status_code == 200  # the worker still serves


def test_memory_hog_is_memory_limit_exceeded(api):
    source = (
        "def main(event):\n    hoard = []\n"
        "    while True:\n        hoard.append(bytearray(1 << 20))\n"
    )
    deployed(api, "py-hog", source, memory_mb=64)
    resp = invoke(api, "py-hog")
    assert resp.status_code == 500, resp.text
    assert resp.json()["error"]["code"] == "memory_limit_exceeded"


def test_env_vars_visible_host_env_not(api):
    source = "import os\ndef main(event):\n    return dict(os.environ)\n"
    deployed(api, "py-env", source, env_vars={"GREETING": "hi"})
    assert invoke(api, "py-env").json() == {"GREETING": "hi"}


def test_functions_never_see_each_others_state(api):
    meddler = (
        "import json, sys\n"
        "json.dumps = lambda *a, **k: 'hijacked'\n"
        "sys.modules['planted'] = 1\n"
        "COUNT = 0\n"
        "def main(event):\n"
        "    global COUNT\n"
        "    COUNT += 1\n"
        "    return COUNT\n"
    )
    deployed(api, "py-meddler", meddler)
    deployed(api, "py-victim", "import sys\ndef main(e):\n    return 'planted' in sys.modules\n")
    for _ in range(2):
        assert invoke(api, "py-meddler").text == "hijacked"  # its own json.dumps
        assert invoke(api, "py-victim").json() is False


def test_example_path_exists():
    assert Path(EXAMPLE / "handler.py").exists()


def test_an_index_out_of_reach_is_named_with_the_offline_route(make_server):
    """A server whose package index cannot be reached says so, and how an offline
    server resolves requirements (not that the package has compiled code)."""
    env = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_CACHE_DIR": "1",
           "PIP_TIMEOUT": "1", "PIP_RETRIES": "1"}  # fmt: skip
    server = make_server(env).start()
    with server.client() as api:
        source = "def main(event):\n    return 1\n"
        resp = create(api, "py-offline", source, requirements=["nimbus-absent-package==1.0"])
    error = resp.json()["latest_build"]["error"]
    assert "the package index could not be reached from this server" in error, error
    assert "PIP_FIND_LINKS" in error and "compiled code" not in error
