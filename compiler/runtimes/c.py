"""`c`: C source to a WASI command module with zig's clang and wasi-libc.

Handler form (DESIGN.md): `char *handler(const char *event_json, const char
*context_json)` returning a malloc'd JSON string, or NULL after
`nimbus_set_error("…")`. The glue (`compiler/glue/c/`, a real C program) is
compiled beside the user's files, which are compiled untouched: every
compiler message names the user's own file and line. `nimbus.h` is included
in every file (`-include`), so the handler's prototype is checked and
`nimbus_set_error` and the JSON helpers need no #include.

Program form: a file with `int main`; `nimbus.h`'s helpers are available.

Layout of a build folder: the user's files at its root (so messages say
"handler.c:3:5"), the platform's under `.nimbus/` (glue, zig's cache, the
artifact).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from .._base import BuildConfig, BuildFailed, BuildLog, BuildRequest, BuildResult
from .._buildcache import cache_key, files_version
from .._jail import run_jailed
from .._sources import RESERVED, choose_form, failure, handler_name, write_sources
from .._toolchains import Toolchain, Toolchains, copy_tree
from .._wasmfile import strip_debug_sections
from .native import check_native_executable

ZIG = Toolchain(name="zig", language="c")
GLUE_DIR = Path(__file__).resolve().parent.parent / "glue" / "c"
GLUE_FILES = ("nimbus.h", "nimbus.c", "nimbus_main.c")
# Where the jail shows GLUE_DIR: a message about the glue (a handler whose
# prototype is not nimbus.h's) names this path, never the server's folders.
JAIL_GLUE = "/nimbus/glue/c"
# A 1 MiB stack, as Rust's wasm32-wasip1 and wasi-sdk give: zig's own default is
# 16 MiB, and the pool resets up to POOL_KEEP_RESIDENT_KB of every memory by memset
# after each call, touched or not: 16 MiB of stack cost a C hello 0.75 ms of CPU per
# call against 0.11 ms with 1 MiB (in-process, keep-resident 16 MiB).
STACK_BYTES = 1024 * 1024
FLAGS = ("-target", "wasm32-wasi", "-O2", "-Wall", f"-Wl,-z,stack-size={STACK_BYTES}")
_MAIN = re.compile(r"\bint\s+main\s*\(")

_SAMPLE = """\
char *handler(const char *event_json, const char *context_json) {
    nimbus_json *event = nimbus_json_parse(event_json);
    nimbus_buf out = {0};
    nimbus_buf_json(&out, nimbus_json_get(event, "name"));
    nimbus_json_free(event);
    (void)context_json;
    return nimbus_buf_finish(&out);
}
"""


def _prune(cache: Path) -> None:
    """Keep what a build with a warm cache reads: the manifests (h/), the
    finished libraries (libc.a, compiler_rt, crt1) and the glue's objects.
    PERF(compiler): 67 → 8 MB, so the per-build copy takes ~0.05 s, not ~0.5 s."""
    for name in ("z", "tmp"):
        for entry in (cache / name).glob("*"):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for entry in (cache / "o").glob("*"):
        if not any(_kept(f.name) for f in entry.iterdir()):
            shutil.rmtree(entry)


def _kept(name: str) -> bool:
    return name.endswith(".a") or name.startswith(("crt1", "nimbus"))


def glue_version() -> str:
    return files_version(GLUE_DIR / name for name in GLUE_FILES)


class CBuilder:
    runtime = "c"

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self.toolchains = Toolchains(config)

    # -- what a build is made from ---------------------------------------------

    def _plan(self, request: BuildRequest) -> tuple[str, str | None]:
        files = request.files or {}
        sources = {name: text for name, text in files.items() if name.endswith(".c")}
        if not sources:
            raise BuildFailed("a C function needs at least one .c file")
        form = choose_form(request.form, any(_MAIN.search(t) for t in sources.values()))
        return form, handler_name(request.handler) if form == "handler" else None

    def cache_key(self, request: BuildRequest) -> str:
        form, handler = self._plan(request)
        return cache_key(
            request,
            handler=handler,
            form=form,
            toolchain=ZIG.fingerprint,
            glue=glue_version(),
            flags=FLAGS,
        )

    # -- toolchain -------------------------------------------------------------

    def prepare(self, log: BuildLog) -> Path:
        """Install zig if needed and fill its warm cache; returns the cache."""
        home = self.toolchains.ensure(ZIG, log)
        made_from = "\0".join((*FLAGS, JAIL_GLUE))  # zig's cache keys objects by path
        key = hashlib.sha256(made_from.encode()).hexdigest()[:8] + "-" + glue_version()
        return self.toolchains.warm_cache(
            ZIG, key, lambda work: self._fill_cache(home, work, log), log
        )

    def _fill_cache(self, home: Path, work: Path, log: BuildLog) -> None:
        (work / "handler.c").write_text(_SAMPLE)
        cache = work / "cache"
        self._compile(home, work, ["handler.c"], "handler", cache, log)
        _prune(cache)

    # -- build -----------------------------------------------------------------

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        form, handler = self._plan(request)
        names = write_sources(request.files, workdir)
        if request.target == "native":
            return self._build_native(workdir, names, form, handler, log)
        warm = self.prepare(log)
        home = self.toolchains.home(ZIG)
        cache = workdir / RESERVED / "cache"
        copy_tree(warm, cache)
        sources = [name for name in names if name.endswith(".c")]
        log.write(f"compiling {', '.join(sources)} ({form} form) with {ZIG.label}")
        artifact = self._compile(home, workdir, sources, handler, cache, log)
        before, after = strip_debug_sections(artifact)
        log.write(f"module {after} bytes (debug info dropped: {before - after} bytes)")
        return BuildResult(
            artifact=artifact, kind="module", runtime_version=f"c (zig {ZIG.version}, wasm32-wasi)"
        )

    def _build_native(
        self, workdir: Path, names: list[str], form: str, handler: str | None, log: BuildLog
    ) -> BuildResult:
        """`"target": "native"`: a static x86-64 Linux binary from the host's gcc, in
        the same jail, with the same glue; it runs in a container (sandbox/_docker.py)."""
        sources = [name for name in names if name.endswith(".c")]
        artifact = workdir / RESERVED / "artifact.bin"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        gcc = shutil.which("gcc") or "/usr/bin/gcc"
        # -lm: glibc keeps <math.h> apart (wasi-libc has it in libc); last, as -static wants
        cmd = [gcc, "-O2", "-Wall", "-static", *_with_glue(sources, handler), "-lm"]
        log.write(f"compiling {', '.join(sources)} ({form} form) with gcc, static x86-64 Linux")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": "/tmp"}
        self._run(cmd, artifact, workdir, [], env, log)
        described = check_native_executable(artifact, log)
        return BuildResult(
            artifact=artifact, kind="native", runtime_version=f"c (gcc, {described})"
        )

    def _compile(
        self,
        home: Path,
        workdir: Path,
        sources: list[str],
        handler: str | None,
        cache: Path,
        log: BuildLog,
    ) -> Path:
        artifact = workdir / RESERVED / "artifact.wasm"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(home / "ziglang" / "zig"), "cc", *FLAGS, *_with_glue(sources, handler)]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(workdir),
            "ZIG_GLOBAL_CACHE_DIR": str(cache),
            "ZIG_LOCAL_CACHE_DIR": str(cache),
        }
        self._run(cmd, artifact, workdir, [home], env, log)
        return artifact

    def _run(
        self,
        cmd: list[str],
        artifact: Path,
        workdir: Path,
        ro_binds: list[Path],
        env: dict[str, str],
        log: BuildLog,
    ) -> None:
        """Compile in the build jail to `artifact`; a compile error names the user's lines."""
        lines: list[str] = []
        code = run_jailed(
            [*cmd, "-o", str(artifact)],
            workdir=workdir,
            ro_binds=ro_binds,
            ro_mounts={JAIL_GLUE: GLUE_DIR},
            env=env,
            timeout=self.config.timeout_sec,
            memory_mb=self.config.memory_mb,
            max_pids=self.config.max_pids,
            log=log,
            output=lines,
        )
        if code != 0 or not artifact.exists():
            raise failure(lines, code, self.config.memory_mb, "compile error")


def _with_glue(sources: list[str], handler: str | None) -> list[str]:
    """The compiler's inputs: the user's sources and the glue; in handler form, the
    generated main that calls `handler`.

    NOTE(compiler): the glue is compiled from its read-only place, mounted at
    JAIL_GLUE: the same path in every build, so zig's cache has its objects.
    """
    args = ["-I", JAIL_GLUE]
    if handler is not None:
        args += ["-include", f"{JAIL_GLUE}/nimbus.h", f"-DNIMBUS_HANDLER={handler}"]
    args += [*sources, f"{JAIL_GLUE}/nimbus.c"]
    if handler is not None:
        args.append(f"{JAIL_GLUE}/nimbus_main.c")
    return args
