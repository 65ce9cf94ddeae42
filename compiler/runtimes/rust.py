"""`rust`: Rust source to a WASI command module, built offline by cargo in the jail.

Handler form (DESIGN.md): `fn handler(event: serde_json::Value, context:
&Context) -> Result<serde_json::Value, String>` (any `Deserialize` event,
`Serialize` result and `Display` error), with `Context` and `serde_json` in
scope. The generated crate root (`.nimbus-main.rs`) declares the user's file
as a module from its own path, so every compiler message and panic location
names the user's file and line; the glue (`compiler/glue/rust/`) reads the
event, calls the handler, writes the result, and turns an `Err` or a panic
into the sandbox's error record. The only change to the user's file is a few
lines appended after its last one (`Context` in scope, the entry point). A
file whose delimiters do not close runs into those lines, and rustc would
point at them: such a build is compiled again from the file as written, and
the messages of that compile are the ones shown.
The result travels on the sandbox's result channel (fd 3), so a handler's
`println!` and `eprintln!` both go to the invocation's log, as on Lambda.

Program form: the file with `fn main` is the crate root, built as it is.

The crate is the build folder: the user's files at its root, a generated
`Cargo.toml` (a user's own contributes its edition, features and
dependencies among the crates available offline — nothing else), the
platform's files under `.nimbus/`. Crates come only from Debian's sources
unpacked with the toolchain. Each build starts from a copy of a warm
`target/` in which the dependencies are compiled, so a function builds in
about a second. No build scripts, cargo configuration, proc-macro crates or
linker flags of the user's.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .._base import BuildConfig, BuildFailed, BuildLog, BuildRequest, BuildResult
from .._buildcache import cache_key, files_version
from .._jail import run_jailed
from .._sources import RESERVED, choose_form, failure, write_sources
from .._toolchains import Toolchain, Toolchains, copy_tree

RUST = Toolchain(name="rust", language="rust")
TARGET = "wasm32-wasip1"
GLUE_DIR = Path(__file__).resolve().parent.parent / "glue" / "rust"
GLUE_FILES = ("main.rs", "module_tail.rs", "nimbus.rs", "check_main.rs")
GLUE_MAIN = ".nimbus-main.rs"  # the crate root of a handler-form function
GLUE_MODULE = f"{RESERVED}/nimbus.rs"
DEFAULT_EDITION = "2021"
EDITIONS = ("2015", "2018", "2021", "2024")
# Crates a function may depend on (Debian's sources, unpacked by
# scripts/toolchains/rust.sh, with their own dependencies).
ALLOWED_CRATES = ("serde", "serde_derive", "serde_json", "itoa", "ryu")
BASE_DEPENDENCIES = {"serde": {"version": "1", "features": ["derive"]}, "serde_json": "1"}
_DEPENDENCY_KEYS = {"version", "features", "default-features", "default_features", "optional"}
_USED_SECTIONS = ("package", "dependencies", "features")
_IGNORED_SECTIONS = ("dev-dependencies", "badges", "lints", "bin", "example", "test", "bench")
_REFUSED = {
    "build-dependencies": "build scripts do not run here",
    "target": "per-target settings (linker, dependencies) are the platform's",
    "profile": "the build profile is the platform's",
    "patch": "crate sources are the platform's",
    "replace": "crate sources are the platform's",
    "workspace": "a function is one package",
    "lib": "a function is a program, not a library; proc-macro crates do not run here",
    "package.build": "build scripts do not run here",
    "package.links": "native libraries cannot be linked",
    "package.workspace": "a function is one package",
}
_RESERVED_NAMES = (GLUE_MAIN, ".cargo", "Cargo.lock")  # and build.rs: _check_build_scripts
# NOTE(rust): constant flags only — the warm target/ is keyed by them. Paths of
# the toolchain's crates (in panics, in messages) do not show the server's folders.
_TOOLCHAIN_PREFIX = "/nimbus/rust"
_FLAGS_KEY = f"{TARGET} remap={_TOOLCHAIN_PREFIX} host-linker=/usr/bin/gcc"
PROFILE = (
    "[profile.release]",
    "opt-level = 3",
    "debug = false",
    # Drop debug info only: the name section stays, so traps name functions.
    'strip = "debuginfo"',
    'panic = "abort"',
    "incremental = false",
)

# PERF(rust): one codegen unit for the function's own crate: no ThinLTO between
# units; less CPU and less wall time than the default 16 even on 2 idle cores
# (order transform: 2.2 s vs 2.8 s CPU), and a smaller module.
_FUNCTION_PROFILE = ("codegen-units = 1",)

_MAIN_FN = re.compile(r"\bfn\s+main\s*\(")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_GLUE_KEY = re.compile(r"\{(user_path|user_module|handler_fn)\}")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_ERRORS_SHOWN = 8
MAX_MESSAGE_CHARS = 6000
_SIGNATURE = (
    "`fn handler(event: serde_json::Value, context: &Context) -> "
    "Result<serde_json::Value, String>` (any Deserialize event, Serialize result and "
    "Display error)"
)
_SAMPLE = """\
#[derive(serde::Deserialize)]
struct Event { name: Option<String> }

fn handler(event: Event, context: &Context) -> Result<serde_json::Value, String> {
    Ok(serde_json::json!({"hello": event.name, "function": context.function_name}))
}
"""


def glue_version() -> str:
    return files_version(GLUE_DIR / name for name in GLUE_FILES)


class RustBuilder:
    runtime = "rust"

    def __init__(self, config: BuildConfig | None = None) -> None:
        self.config = config or BuildConfig()
        self.toolchains = Toolchains(self.config)

    # -- what a build is made from ---------------------------------------------

    def cache_key(self, request: BuildRequest) -> str:
        plan = _plan(request)
        return cache_key(
            request,
            handler=f"{plan.entry}:{plan.handler_fn}" if plan.form == "handler" else None,
            form=plan.form,
            toolchain=RUST.fingerprint,
            glue=glue_version(),
            flags=(_FLAGS_KEY, *PROFILE, *_FUNCTION_PROFILE),
        )

    # -- toolchain -------------------------------------------------------------

    def prepare(self, log: BuildLog) -> Path:
        """Install the toolchain if needed and fill the warm target/; returns it."""
        home = self.toolchains.ensure(RUST, log).resolve()  # the jail binds real paths
        # Keyed by what the dependencies' build is made from (their manifest,
        # profile and flags), not the glue: a glue change needs no new warm build.
        made_from = _cargo_toml("warm", "main.rs", {}) + _FLAGS_KEY
        key = hashlib.sha256(made_from.encode()).hexdigest()[:16]
        return self.toolchains.warm_cache(RUST, key, lambda work: self._fill(home, work, log), log)

    def _fill(self, home: Path, work: Path, log: BuildLog) -> None:
        """The dependencies built once by a sample handler; `work/cache` is its target/."""
        request = BuildRequest("warm", 0, "rust", None, None, None, files={"handler.rs": _SAMPLE})
        self._compile(home, _plan(request), work, log, target=work / "cache")

    # -- build -----------------------------------------------------------------

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        plan = _plan(request, log)  # a refused source fails before any install
        warm = self.prepare(log)
        home = self.toolchains.home(RUST).resolve()
        target = workdir / RESERVED / "target"
        copy_tree(warm, target)
        wasm = self._compile(home, plan, workdir, log, target=target)
        artifact = workdir / RESERVED / "artifact.wasm"
        shutil.copyfile(wasm, artifact)  # out of target/ at once
        shutil.rmtree(target, ignore_errors=True)
        log.write(f"module {artifact.stat().st_size} bytes")
        return BuildResult(
            artifact=artifact, kind="module", runtime_version=f"rust {RUST.version} ({TARGET})"
        )

    def _compile(
        self, home: Path, plan: _Plan, workdir: Path, log: BuildLog, *, target: Path
    ) -> Path:
        write_sources(plan.files, workdir)
        if plan.form == "handler":
            _write_glue(workdir, plan.entry, plan.handler_fn)
        bin_path = GLUE_MAIN if plan.form == "handler" else plan.entry
        (workdir / "Cargo.toml").write_text(_cargo_toml(plan.package, bin_path, plan.manifest))
        log.write(
            f"compiling {plan.entry} ({plan.form} form"
            + (f", fn {plan.handler_fn}" if plan.form == "handler" else "")
            + f") with {RUST.label} for {TARGET}"
        )
        code, lines, errors, wasm = self._cargo(home, plan, workdir, log, target=target)
        if code != 0 or wasm is None:
            if plan.form == "handler" and _ran_into_glue(errors, plan):
                errors = self._errors_as_written(home, plan, workdir, log, target) or errors
            for error in errors:
                log.write(error["rendered"])
            if not errors:
                raise failure(lines, code, self.config.memory_mb, "the Rust build failed")
            raise BuildFailed(_compile_errors(errors, _line_counts(plan.files)))
        return Path(wasm)

    def _errors_as_written(
        self, home: Path, plan: _Plan, workdir: Path, log: BuildLog, target: Path
    ) -> list[dict]:
        """rustc's errors about the handler's file compiled as the user wrote it: the
        glue after its last line gone, so a delimiter left open ends where theirs does."""
        log.write(
            f"{plan.entry}: the compiler's message points past its last line (a delimiter "
            "left open?); compiling it again as written to show where"
        )
        write_sources({plan.entry: plan.files[plan.entry]}, workdir)
        (workdir / GLUE_MAIN).write_text(_fill_glue("check_main.rs", plan.entry, plan.handler_fn))
        _, _, errors, _ = self._cargo(home, plan, workdir, log, target=target)
        return errors

    def _cargo(
        self, home: Path, plan: _Plan, workdir: Path, log: BuildLog, *, target: Path
    ) -> tuple[int, list[str], list[dict], str | None]:
        """One jailed `cargo build` of the crate in `workdir`: (exit code, its
        output, rustc's errors, the built .wasm or None)."""
        usr = home / "usr"
        nimbus = workdir / RESERVED
        (nimbus / "cargo-home").mkdir(parents=True, exist_ok=True)
        (nimbus / "cargo-home" / "config.toml").write_text(
            '[source.crates-io]\nreplace-with = "debian"\n\n'
            f"[source.debian]\ndirectory = {json.dumps(str(usr / 'share/cargo/registry'))}\n"
        )
        messages = nimbus / "cargo-messages.json"
        env = {
            "PATH": f"{usr / 'bin'}:/usr/bin:/bin",
            "LD_LIBRARY_PATH": str(usr / "lib/x86_64-linux-gnu"),
            "CARGO_HOME": str(nimbus / "cargo-home"),
            "CARGO_TARGET_DIR": str(target),
            "CARGO_NET_OFFLINE": "true",
            "CARGO_TERM_COLOR": "never",
            "CARGO_TERM_PROGRESS_WHEN": "never",
            "CARGO_BUILD_JOBS": "2",
            # The registry's build scripts and serde_derive link for the host;
            # /usr/bin/cc is an /etc/alternatives link the jail does not show.
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER": "/usr/bin/gcc",
            "RUSTFLAGS": f"--remap-path-prefix={home}={_TOOLCHAIN_PREFIX}",
            # (change _FLAGS_KEY with anything here that changes what rustc makes)
        }
        # cargo's JSON messages (stdout) go to a file; its progress (stderr) to the log.
        cmd = [
            "/bin/sh", "-c", 'exec "$@" > "$0"', str(messages),
            "cargo", "build", "--offline", "--release", "--target", TARGET,
            "--message-format=json-diagnostic-rendered-ansi",
        ]  # fmt: skip
        lines: list[str] = []
        code = run_jailed(
            cmd,
            workdir=workdir,
            ro_binds=[home],
            env=env,
            timeout=self.config.timeout_sec,
            memory_mb=self.config.memory_mb,
            max_pids=self.config.max_pids,
            log=log,
            output=lines,
        )
        errors, wasm = _read_messages(messages, plan.package, log)
        return code, lines, errors, wasm


# -- the user's files -----------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    form: str  # "handler" | "program"
    entry: str  # the handler's file, or the program's crate root
    handler_fn: str
    files: dict[str, str]  # the user's files but Cargo.toml
    manifest: dict  # what Nimbus takes from the user's Cargo.toml
    package: str


def _plan(request: BuildRequest, log: BuildLog | None = None) -> _Plan:
    """What to build, from the request alone; refuses what cannot be built."""
    files = dict(request.files or {})
    _check_names(files)
    manifest = _user_manifest(files.pop("Cargo.toml", None), log)
    entry, handler_fn = _entry(files, request.handler)
    _check_build_scripts(files, entry)
    form = choose_form(request.form, bool(_MAIN_FN.search(_code(files[entry]))))
    if form == "handler" and not re.search(
        rf"\bfn\s+{re.escape(handler_fn)}\b", _code(files[entry])
    ):
        raise BuildFailed(
            f"{entry} has no `fn {handler_fn}`: a handler-form function is {_SIGNATURE}; "
            "a program has `fn main()`"
        )
    return _Plan(form, entry, handler_fn, files, manifest, _package_name(request))


def _check_names(files: dict[str, str]) -> None:
    for name in files:
        path = PurePosixPath(name)
        if path.parts and path.parts[0] in _RESERVED_NAMES:
            raise BuildFailed(f"{name}: this name is reserved for the platform's build files")


def _check_build_scripts(files: dict[str, str], entry: str) -> None:
    """A build.rs beside the function's file is refused: it would not run. The function's
    own file may be called so (`nimbus deploy build.rs`): cargo runs none (`build = false`)."""
    for name in files:
        if PurePosixPath(name).name == "build.rs" and name != entry:
            raise BuildFailed(
                f"{name}: build scripts are not supported: a build compiles source only"
            )


def _user_manifest(text: str | None, log: BuildLog | None) -> dict:
    """What Nimbus takes from a user's Cargo.toml: edition, features, dependencies."""
    if text is None:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BuildFailed(f"Cargo.toml: {exc}") from None
    package = data.get("package", {})
    present = {*data, *(f"package.{key}" for key in package)}
    if package.get("build") is False:
        present.discard("package.build")
    for name, why in _REFUSED.items():
        if name in present:
            raise BuildFailed(f"Cargo.toml: `{name}` is not supported: {why}")
    unknown = [s for s in data if s not in (*_USED_SECTIONS, *_IGNORED_SECTIONS)]
    if unknown:
        raise BuildFailed(f"Cargo.toml: [{unknown[0]}] is not supported")
    ignored = [f"[{s}]" for s in data if s in _IGNORED_SECTIONS]
    if ignored and log is not None:
        log.write(f"Cargo.toml: ignoring {', '.join(ignored)}")
    edition = str(package.get("edition", DEFAULT_EDITION))
    if edition not in EDITIONS:
        raise BuildFailed(f"Cargo.toml: edition {edition!r} is not one of {', '.join(EDITIONS)}")
    dependencies = {}
    for name, spec in data.get("dependencies", {}).items():
        if name not in ALLOWED_CRATES:
            raise BuildFailed(
                f"Cargo.toml: the crate {name!r} is not available: builds are offline and may "
                f"use {', '.join(ALLOWED_CRATES)}"
            )
        if isinstance(spec, dict) and set(spec) - _DEPENDENCY_KEYS:
            key = sorted(set(spec) - _DEPENDENCY_KEYS)[0]
            raise BuildFailed(
                f"Cargo.toml: dependency {name!r}: {key!r} is not supported "
                "(crates come from the platform's offline registry)"
            )
        if not isinstance(spec, str | dict):
            raise BuildFailed(f"Cargo.toml: dependency {name!r} must be a version or a table")
        dependencies[name] = spec
    features = data.get("features", {})
    if not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in features.values()
    ):
        raise BuildFailed("Cargo.toml: [features] values must be lists of strings")
    return {"edition": edition, "dependencies": dependencies, "features": features}


def _entry(files: dict[str, str], handler: str | None) -> tuple[str, str]:
    """(the function's main file, the handler function's name) from `handler`:
    "file.rs", "file.fn" / "dir/file.fn", "fn", or nothing (handler.rs, fn handler)."""
    sources = sorted(name for name in files if name.endswith(".rs"))
    if not sources:
        raise BuildFailed("a Rust function needs at least one .rs file")
    handler_fn, wanted = "handler", None
    if handler:
        if handler.endswith(".rs"):
            wanted = handler
        elif "." in handler:
            stem, handler_fn = handler.rsplit(".", 1)
            wanted = f"{stem}.rs"
        else:
            handler_fn = handler
        if not _IDENT.match(handler_fn):
            raise BuildFailed(f"handler {handler!r}: {handler_fn!r} is not a Rust function name")
    if wanted is not None:
        if wanted not in files:
            raise BuildFailed(f"handler {handler!r}: there is no file {wanted}")
        return wanted, handler_fn
    for name in ("handler.rs", "main.rs", "src/handler.rs", "src/main.rs", "lib.rs", "src/lib.rs"):
        if name in files:
            return name, handler_fn
    if len(sources) == 1:
        return sources[0], handler_fn
    raise BuildFailed(
        "cannot tell which file is the function's: name it handler.rs, or set `handler` "
        f"to one of {', '.join(sources)}"
    )


def _code(text: str) -> str:
    return _COMMENTS.sub("", text)


def _package_name(request: BuildRequest) -> str:
    # NOTE(rust): a package name of its own per function and version: two packages
    # of one name in one target folder once shared a fingerprint, and the second
    # "build" returned the first one's binary.
    ident = re.sub(r"[^a-z0-9_]", "_", f"{request.function_id}_v{request.version}".lower())
    return f"nimbus_{ident}"


def _line_counts(files: dict[str, str]) -> dict[str, int]:
    return {name: text.count("\n") + 1 for name, text in files.items() if name.endswith(".rs")}


def _fill_glue(name: str, entry: str, handler_fn: str) -> str:
    """A glue file with its keys filled in one pass (a file name may hold `{handler_fn}`)."""
    values = {
        # NOTE(security): inside Rust string literals: any file name, escaped.
        "user_path": entry.replace("\\", "\\\\").replace('"', '\\"'),
        "user_module": "handler",  # the user's file, whatever its name, is `handler`
        "handler_fn": handler_fn,
    }
    return _GLUE_KEY.sub(lambda key: values[key.group(1)], (GLUE_DIR / name).read_text())


def _write_glue(crate: Path, entry: str, handler_fn: str) -> None:
    (crate / GLUE_MAIN).write_text(_fill_glue("main.rs", entry, handler_fn))
    (crate / GLUE_MODULE).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(GLUE_DIR / "nimbus.rs", crate / GLUE_MODULE)
    # Appended after the user's last line, so the user's lines keep their numbers.
    source = crate / entry
    text = source.read_text()
    tail = _fill_glue("module_tail.rs", entry, handler_fn)
    source.write_text(text + ("" if text.endswith("\n") else "\n") + tail)


# -- Cargo.toml ---------------------------------------------------------------------


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def _merge_dependency(base, user):
    """The user's requirement, keeping the platform's features (so the warm build fits)."""
    if base is None:
        return user
    base = {"version": base} if isinstance(base, str) else dict(base)
    if isinstance(user, str):
        return {**base, "version": user}
    merged = {**base, **user}
    merged.pop("default-features", None)  # std is what the glue needs
    merged.pop("default_features", None)
    merged["features"] = sorted({*base.get("features", []), *user.get("features", [])})
    return merged


def _cargo_toml(package: str, bin_path: str, manifest: dict) -> str:
    dependencies = dict(BASE_DEPENDENCIES)
    for name, spec in manifest.get("dependencies", {}).items():
        dependencies[name] = _merge_dependency(dependencies.get(name), spec)
    lines = [
        "[package]",
        f"name = {json.dumps(package)}",
        'version = "0.0.0"',
        f"edition = {json.dumps(manifest.get('edition', DEFAULT_EDITION))}",
        "build = false",
        "publish = false",
        "autobins = false",
        "autoexamples = false",
        "autotests = false",
        "autobenches = false",
        "",
        "[[bin]]",
        f"name = {json.dumps(package)}",
        f"path = {json.dumps(bin_path, ensure_ascii=False)}",  # TOML: no surrogate pairs
        "test = false",
        "bench = false",
        "",
        "[dependencies]",
        *(f"{name} = {_toml(spec)}" for name, spec in sorted(dependencies.items())),
        "",
    ]
    if manifest.get("features"):
        lines += [
            "[features]",
            *(f"{json.dumps(k)} = {_toml(v)}" for k, v in manifest["features"].items()),
            "",
        ]
    function_profile = ("", f"[profile.release.package.{package}]", *_FUNCTION_PROFILE)
    return "\n".join([*lines, *PROFILE, *function_profile, ""])


# -- compiler messages ---------------------------------------------------------------


def _read_messages(path: Path, package: str, log: BuildLog) -> tuple[list[dict], str | None]:
    """(the errors, the built .wasm) from cargo's JSON messages; the user's
    warnings go to the log (the errors, once the build knows which it shows)."""
    errors: list[dict] = []
    wasm = None
    if not path.exists():
        return errors, wasm
    for line in path.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        reason = item.get("reason")
        if reason == "compiler-message":
            message = item["message"]
            rendered = _ANSI.sub("", message.get("rendered") or message.get("message", "")).rstrip()
            level = message.get("level", "")
            if level.startswith("error") and not rendered.startswith("error: aborting due to"):
                errors.append(
                    {
                        "rendered": rendered,
                        "spans": message.get("spans") or [],
                        "code": (message.get("code") or {}).get("code"),
                    }
                )
            elif level == "warning" and package in item.get("package_id", ""):
                log.write(rendered)
        elif reason == "compiler-artifact" and item.get("target", {}).get("name") == package:
            wasm = item.get("executable") or wasm
    return errors, wasm


def _compile_errors(errors: list[dict], user_lines: dict[str, int]) -> str:
    shown = [e["rendered"] for e in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > len(shown):
        shown.append(f"... and {len(errors) - len(shown)} more errors (see the build log)")
    text = "\n\n".join(shown)
    if any(_in_glue(span, user_lines) for e in errors for span in e["spans"]):
        text += f"\n\nnote: a handler-form function is {_SIGNATURE}"
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + "\n[…] (see the build log)"
    return text


def _ran_into_glue(errors: list[dict], plan: _Plan) -> bool:
    """A syntax error (rustc gives those no code) placed in the lines appended to the
    handler's file: the user's delimiters did not close before them."""
    last = _line_counts(plan.files)[plan.entry]
    return any(
        error["code"] is None
        and span.get("is_primary")
        and span.get("file_name") == plan.entry
        and span.get("line_start", 0) > last
        for error in errors
        for span in error["spans"]
    )


def _in_glue(span: dict, user_lines: dict[str, int]) -> bool:
    """A message about the platform's lines: a handler whose signature does not fit."""
    name = span.get("file_name", "")
    if name == GLUE_MAIN or name.startswith(f"{RESERVED}/"):
        return True
    return name in user_lines and span.get("line_start", 0) > user_lines[name]
