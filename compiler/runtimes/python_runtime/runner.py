"""Nimbus's shared Python runtime: this module runs INSIDE WebAssembly (CPython 3.14).

componentize-py turns it into one component exporting the `runtime` world of
wit/handler.wit, shared by every Python function. The host never imports it.

- `check(source, handler)` — the build's validation: every file compiles with
  this interpreter (syntax errors name the user's file and line) and the
  handler module binds the handler name. Runs no user code.
- `load(source, handler, context)` — loads the user's files into fresh modules
  and imports the handler's (its top level runs): a pre-warmed instance does
  this off the request path, so its `run` only calls the handler.
- `run(source, handler, event, context)` — loads the function unless this
  instance already has (`source` may then be ""), calls the handler, returns
  its result as JSON. An instance serves one function, never another.

`source` is a JSON object of path → text (the function's `files`). The files
are served to `import` from memory by `_BundleFinder`, compiled under their
own names and put in `linecache`, so tracebacks show the user's lines. The
same files are mounted read-only at `/function` when the function has data
files (the working directory then, as Lambda's task root is), and a module's
`__file__` points there, so `open(Path(__file__).parent / "data.json")` and
`open("data.json")` read the function's own data files.

What runs at build time (module level here) is in the snapshot every
invocation starts from; the stdlib is also mounted read-only at `/python`, so
modules not imported here still import at run time. A function's bundled
requirements, if any, are mounted read-only at `/deps`.
"""

import ast
import asyncio
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import linecache
import logging
import os
import random
import selectors
import sys
import time
import traceback

import wit_world
from componentize_py_types import Err

REVISION = 4  # bump when this file changes what functions see: a new runtime_version
DEPS_DIR = "/deps"
FUNCTION_DIR = "/function"  # the function's files, read-only, if it has data files
_STACK_LINES = 60

# Imported at build time so that they are in the snapshot: common in handlers
# and free at run time (anything else is read from /python when imported).
# PERF(runtime): statistics and decimal (pure Python in WASI) cost ~30 ms to
# import at run time.
_SNAPSHOT_MODULES = (
    "base64", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "functools", "hashlib", "itertools", "logging", "math", "operator", "re",
    "statistics", "string", "struct", "textwrap", "typing", "urllib.parse", "uuid",
)  # fmt: skip
for _name in _SNAPSHOT_MODULES:
    importlib.import_module(_name)

# -- bounded sleep --------------------------------------------------------------

# NOTE(runtime): wasmtime's epoch deadline cannot interrupt a WASI host call,
# so `time.sleep(60)` would hold its worker thread for 60 s after the caller got
# its timeout. Sleeps are bounded here instead: one that would end past the
# invocation's deadline sleeps until just after it and then spins, and the
# epoch deadline (already passed) stops the spin at once. The host's guarded
# threads remain the backstop for any other blocking call.
_real_sleep = time.sleep
_deadline = [float("inf")]  # wall-clock seconds; set by each `run`


def _bounded_sleep(seconds):
    if not isinstance(seconds, (int, float)) or seconds < 0:
        return _real_sleep(seconds)  # its own TypeError / ValueError
    left = _deadline[0] - time.time()
    if seconds < left:
        return _real_sleep(seconds)
    _real_sleep(max(left, 0.0) + 0.02)
    while True:  # the epoch deadline has passed: wasmtime stops this loop
        pass


time.sleep = _bounded_sleep


# -- the user's files as modules ------------------------------------------------


class _BundleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the function's own files to `import`, ahead of the stdlib (as Lambda's
    task root is first on sys.path). `pkg/mod.py` is `pkg.mod`; a folder without
    `__init__.py` is a namespace package."""

    def __init__(self, files: dict, folder: str | None) -> None:
        self.files = files
        self.folder = folder  # where the files are mounted, if they are
        self.folders = set()
        for path in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                self.folders.add("/".join(parts[:i]))

    def find_spec(self, fullname, path=None, target=None):
        base = fullname.replace(".", "/")
        init = base + "/__init__.py"
        if init in self.files:
            return importlib.util.spec_from_loader(fullname, self, origin=init, is_package=True)
        if base + ".py" in self.files:
            return importlib.util.spec_from_loader(fullname, self, origin=base + ".py")
        if base in self.folders:
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        origin = module.__spec__.origin
        # Code keeps the short name (tracebacks say "handler.py"); __file__ is where
        # the file can be read from.
        module.__file__ = f"{self.folder}/{origin}" if self.folder else origin
        code = compile(self.files[origin], origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def get_source(self, fullname):
        spec = self.find_spec(fullname)
        return self.files.get(spec.origin) if spec is not None else None


def _load_files(source: str) -> dict:
    files = json.loads(source)
    if not isinstance(files, dict):
        raise ValueError("the source bundle must be a JSON object of path -> text")
    for path, text in files.items():
        if path.endswith(".py"):
            linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    return files


def _split_handler(handler: str) -> tuple:
    module, _, name = handler.rpartition(".")
    if not module or not name:
        raise ValueError(f"handler {handler!r} must look like 'module.function'")
    return module, name


def _module_file(files: dict, module: str) -> str:
    base = module.replace(".", "/")
    for path in (base + ".py", base + "/__init__.py"):
        if path in files:
            return path
    raise ModuleNotFoundError(f"no {base}.py among the function's files for handler module")


# -- logging --------------------------------------------------------------------

# NOTE(runtime): as Lambda's Python runtime does, the root logger has a handler
# writing "[LEVEL]\t<UTC time>\t<request id>\t<message>" lines to the call's log
# (stderr here), so `logging.getLogger().setLevel(logging.INFO)` then `.info()` shows
# up, with the invocation id. The root logger stays at WARNING (Python's and
# Lambda's default) unless the function's env var AWS_LAMBDA_LOG_LEVEL names a level.
# Unlike Lambda, `logging.basicConfig(...)` takes effect: it replaces this handler
# (Lambda's silently does nothing because the root logger already has one).
_invocation_id = [""]  # set by each `run`: a reused instance serves many calls
_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class _InvocationLog(logging.Handler):
    """Each record, with the invocation id (`%(aws_request_id)s` as on Lambda, or
    `%(invocation_id)s`), as one entry of the call's log."""

    def emit(self, record):
        record.aws_request_id = record.invocation_id = _invocation_id[0]
        try:
            sys.stderr.write(self.format(record) + "\n")  # sys.stderr now, if replaced
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _log_handler() -> logging.Handler:
    formatter = logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler = _InvocationLog()
    handler.setFormatter(formatter)
    return handler


_LOG_HANDLER = _log_handler()
logging.getLogger().addHandler(_LOG_HANDLER)
_stock_basic_config = logging.basicConfig


def _basic_config(**kwargs):
    root = logging.getLogger()
    if root.handlers == [_LOG_HANDLER]:  # nothing of the user's yet: theirs replaces ours
        root.removeHandler(_LOG_HANDLER)
    _stock_basic_config(**kwargs)


_basic_config.__doc__ = _stock_basic_config.__doc__
logging.basicConfig = _basic_config


def _log_level_from_env() -> None:
    """Lambda's AWS_LAMBDA_LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR, FATAL), if set."""
    name = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if name:
        name = name.upper()
        level = logging.getLevelNamesMapping().get("DEBUG" if name == "TRACE" else name)
        if level is not None:
            logging.getLogger().setLevel(level)


# -- context --------------------------------------------------------------------


_NO_LAMBDA_EQUIVALENT = {
    "invoked_function_arn": "Nimbus has no ARNs: the function is context.function_name, "
    "its version context.function_version",
    "log_group_name": "Nimbus has no log groups: the function's log is "
    "GET /api/v1/functions/{id}/logs",
    "log_stream_name": "Nimbus has no log streams: this call's log is "
    "GET /api/v1/functions/{id}/logs?invocation_id=<context.aws_request_id>",
}


class Context(dict):
    """The invocation context: a dict (DESIGN.md) that also reads like Lambda's
    context object (`context.function_name`, `get_remaining_time_in_millis()`).

    Lambda's names are read-only aliases of the platform's keys, not keys: the
    dict (and its JSON) holds only what DESIGN.md lists. An attribute reads a key
    of the dict otherwise (`context.invocation_id`, a caller's own keys)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(_NO_LAMBDA_EQUIVALENT.get(name, name)) from None

    @property
    def aws_request_id(self) -> str:
        return self.get("invocation_id", "")

    @property
    def function_version(self) -> str:
        return str(self.get("version", ""))

    @property
    def memory_limit_in_mb(self) -> int:
        return int(self.get("memory_limit_mb", 0))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.get("deadline_ms", 0) - time.time() * 1000))

    def log(self, message) -> None:
        """Lambda's `context.log`: the text as it is (no newline added) to the call's log."""
        sys.stderr.write(str(message))


class _SleepSelector(selectors.BaseSelector):
    """No file descriptors can be waited on in WASI here: waiting is sleeping."""

    def register(self, fileobj, events, data=None):
        raise OSError("waiting on file descriptors is not supported in functions")

    def unregister(self, fileobj):
        raise KeyError(fileobj)

    def select(self, timeout=None):
        time.sleep(1e9 if timeout is None else max(0.0, timeout))  # bounded: see above
        return []

    def get_map(self):
        return {}


class _EventLoop(asyncio.BaseEventLoop):
    """asyncio's own loop on a selector that only sleeps: timers, tasks and
    `asyncio.sleep` work; the stock loop needs a socketpair WASI does not have."""

    def __init__(self):
        super().__init__()
        self._selector = _SleepSelector()

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass


# Whatever the user calls (`asyncio.run`, `new_event_loop`) gets this loop.
asyncio.new_event_loop = asyncio.events.new_event_loop = _EventLoop


def _takes_context(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) >= 2 or any(
        p.kind == p.VAR_POSITIONAL for p in params
    )


def _call(fn, takes_context: bool, event, context):
    result = fn(event, context) if takes_context else fn(event)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result), loop_factory=_EventLoop)
    return result


async def _awaited(awaitable):
    return await awaitable


# -- errors ---------------------------------------------------------------------


def _not_json(exc: Exception, result, fn) -> Exception:
    """The encoder's error said as the handler's: what in its return value is not JSON
    (`result["items"][2]: set`), its traceback the handler's `def` line (the encoder's
    frames name nothing of the user's). Only the failure path walks the value."""
    try:
        found = _first_not_json(result, "result", [])
    except RecursionError:
        found = None
    what = f"{found} ({exc})" if found else str(exc)
    error = type(exc)(f"the handler's return value could not be encoded as JSON: {what}")
    code = getattr(fn, "__code__", None)
    if code is not None:
        name = getattr(fn, "__qualname__", code.co_name)
        error._nimbus_frames = [traceback.FrameSummary(code.co_filename, code.co_firstlineno, name)]
    return error


def _key_text(key) -> str:
    text = json.dumps(key, ensure_ascii=False) if isinstance(key, str) else repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_not_json(value, path: str, ancestors: list):
    """Where `value` holds something json.dumps refuses, and what: or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        finite = value == value and value not in (float("inf"), float("-inf"))
        return None if finite else f"{path}: float {value}"
    if not isinstance(value, (dict, list, tuple)):
        return f"{path}: {type(value).__name__}"
    for seen, where in ancestors:
        if seen is value:
            return f"{path}: a circular reference to {where}"
    ancestors.append((value, path))
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float, bool))):
                return f"{path}: a key of type {type(key).__name__} ({_key_text(key)})"
            items.append((f"{path}[{_key_text(key)}]", item))
    else:
        items = ((f"{path}[{i}]", item) for i, item in enumerate(value))
    for where, item in items:
        found = _first_not_json(item, where, ancestors)
        if found:
            return found
    ancestors.pop()
    return None


def _user_frames(exc: BaseException, user_files) -> list:
    """The traceback without this runtime's own frames."""
    frames = getattr(exc, "_nimbus_frames", None)
    if frames is not None:
        return frames
    tb = exc.__traceback__
    frames = traceback.extract_tb(tb)
    mine = __file__
    kept = [f for f in frames if f.filename != mine and "importlib._bootstrap" not in f.filename]
    user = [f for f in kept if f.filename in user_files]
    return kept if user else kept[-5:]


def _error_info(exc: BaseException, user_files=()) -> "wit_world.ErrorInfo":
    if isinstance(exc, MemoryError):
        # Free what the failed frames hold before formatting anything.
        traceback.clear_frames(exc.__traceback__)
        return wit_world.ErrorInfo(type="MemoryError", message="out of memory", stack="")
    lines = ["Traceback (most recent call last):"]
    for line in traceback.format_list(_user_frames(exc, user_files)):
        lines.extend(line.rstrip("\n").split("\n"))
    lines.extend("".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n").split("\n"))
    if len(lines) > _STACK_LINES:
        lines = [*lines[:10], f"... {len(lines) - _STACK_LINES + 10} lines ...", *lines[-50:]]
    return wit_world.ErrorInfo(type=type(exc).__name__, message=str(exc), stack="\n".join(lines))


def _syntax_error_info(exc: SyntaxError) -> "wit_world.ErrorInfo":
    where = f"{exc.filename}, line {exc.lineno}"
    text = "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
    return wit_world.ErrorInfo(type=type(exc).__name__, message=f"{where}: {exc.msg}", stack=text)


# -- the exports ----------------------------------------------------------------


def _binds(tree: ast.Module, name: str) -> bool | None:
    """Whether the module's top level binds `name` (None: cannot tell, star import)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == name:
                return True
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                if (alias.asname or alias.name.split(".")[0]) == name:
                    return True
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                    return True
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            return None  # conditional definitions: trust the user
    return False


def check(source: str, handler: str) -> str:
    files = _load_files(source)
    trees = {}
    for path, text in sorted(files.items()):
        if path.endswith(".py"):
            trees[path] = compile(text, path, "exec", ast.PyCF_ONLY_AST | ast.PyCF_OPTIMIZED_AST)
            compile(trees[path], path, "exec", dont_inherit=True)  # the compiler's own checks
    module, name = _split_handler(handler)
    path = _module_file(files, module)
    if _binds(trees[path], name) is False:
        raise NameError(f"{path} defines no `{name}` (the handler is {handler!r})")
    return json.dumps({"python": sys.version.split()[0], "files": len(trees)})


class _Function:
    """The one function this instance serves: its files, and its handler once imported."""

    def __init__(self, source: str, handler: str) -> None:
        self.source = source
        self.handler = handler
        self.files = _load_files(source)
        self.fn = None
        self.takes_context = True


_WARM_JSON = '{"a": [1, 2.5, "text", null, true, {"b": "\\u00e9"}]}'
# The host's warm-up of `run` (sandbox/_component.py): a handler no function can have
# (a handler needs a dot).
_WARM_UP = "nimbus-warm-up"
_serving = [None]  # the _Function of this instance (an instance never serves two)


def _function(source: str, handler: str) -> _Function:
    """This instance's function, its handler imported on first use (`load`, or the
    first `run`).

    `source` may be "" once this instance holds a function: the host then saves
    copying the bundle into every call of a reused instance."""
    function = _serving[0]
    if function is None:
        if not source:
            raise ValueError("no source given and none loaded")
        # NOTE(runtime): every instance starts from the same snapshot, so the
        # generators seeded at build time would repeat: reseed from the host's
        # entropy (WASI random) once per instance, before any user code runs.
        random.seed()
        _log_level_from_env()
        function = _Function(source, handler)
        folder = FUNCTION_DIR if os.path.isdir(FUNCTION_DIR) else None
        if folder is not None:
            os.chdir(folder)
        sys.meta_path.insert(0, _BundleFinder(function.files, folder))
        if os.path.isdir(DEPS_DIR) and DEPS_DIR not in sys.path:
            sys.path.append(DEPS_DIR)
        _serving[0] = function
    elif (source and source != function.source) or handler != function.handler:
        raise RuntimeError("this instance already serves another function")
    if function.fn is None:  # not imported yet, or its import failed last time
        module, name = _split_handler(handler)
        fn = getattr(importlib.import_module(module), name)
        function.takes_context = _takes_context(fn)
        function.fn = fn
    return function


def _begin(context: str) -> Context:
    ctx = Context(json.loads(context))
    _deadline[0] = ctx.get("deadline_ms", float("inf")) / 1000
    _invocation_id[0] = ctx.get("invocation_id", "")
    return ctx


def load(source: str, handler: str, context: str) -> None:
    _begin(context)
    _function(source, handler)
    # PERF(runtime): the path every `run` takes, once, on platform data: the memory
    # pages it writes are copied now (a pre-warmed instance), not on the first call.
    json.dumps(json.loads(_WARM_JSON), ensure_ascii=False, allow_nan=False)


def _echo(event):
    return event


def run(source: str, handler: str, event: str, context: str) -> str:
    ctx = _begin(context)
    if handler == _WARM_UP:
        # PERF(runtime): the host takes this path once on a pre-warmed instance, with
        # platform data and `_echo` in place of the handler (the interpreter
        # specialises what it runs): nothing of the function is read or called.
        fn, takes_context = _echo, False
    else:
        function = _function(source, handler)
        fn, takes_context = function.fn, function.takes_context
    result = _call(fn, takes_context, json.loads(event), ctx)
    try:
        return json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _not_json(exc, result, fn) from None


def _user_files(source: str) -> dict:
    """The function's files, for tracebacks (the loaded ones when the host sent none)."""
    if _serving[0] is not None:
        return _serving[0].files
    try:
        return json.loads(source)
    except Exception:
        return {}


class WitWorld(wit_world.WitWorld):
    # NOTE(runtime): anything but `Err` escaping an export makes componentize-py
    # trap, so every exception becomes an error-info here.

    def check(self, source: str, handler: str) -> str:
        try:
            return check(source, handler)
        except SyntaxError as exc:
            raise Err(_syntax_error_info(exc)) from None
        except BaseException as exc:
            info = wit_world.ErrorInfo(type=type(exc).__name__, message=str(exc), stack="")
            raise Err(info) from None

    def load(self, source: str, handler: str, context: str) -> None:
        try:
            load(source, handler, context)
        except BaseException as exc:
            raise Err(_run_error_info(exc, source)) from None

    def run(self, source: str, handler: str, event: str, context: str) -> str:
        try:
            return run(source, handler, event, context)
        except BaseException as exc:
            raise Err(_run_error_info(exc, source)) from None


def _run_error_info(exc: BaseException, source: str) -> "wit_world.ErrorInfo":
    files = _user_files(source)
    if isinstance(exc, SyntaxError) and exc.filename in files:
        return _syntax_error_info(exc)
    return _error_info(exc, files)
