"""`go`: Go source to a WASI command module (GOOS=wasip1 GOARCH=wasm); modules only vendored.

Handler form (DESIGN.md): `func handler(event interface{}, context
map[string]string) interface{}` or `… (interface{}, error)` (the context
parameter may be left out), with or without a `package main` clause. A
file without one gets `package main` and a `//line` directive, so every
message still points at the user's own lines; a file in another package is
moved into `main` on the same line. The glue (`compiler/glue/go/`, a real Go
file) is compiled beside it; `nimbus_handler.go`, generated, binds the
handler by name and checks its signature at compile time.

Program form: a `func main()`; built as it is.

`go build` leaves out some files by their names alone: `*_test.go`, names
starting with `_` or `.`, and `name_GOOS.go`/`name_GOARCH.go` for another
target (`main_linux.go` on wasip1/wasm). Among several files that is Go's
own platform split, kept. A function's only top-level `.go` file is built
under a neutral name (`LONE_FILE`) with a `//line` directive, so it builds
and its messages and stacks still name the user's file; when every one of
several files is left out, the build fails naming them.

`"target": "native"` builds the same program for linux/amd64 instead
(static: no cgo), run in a container by the native fallback. The glue is the
same: the result on stdout, the handler's prints on stderr.

Builds are offline (`GOPROXY=off`, `GOTOOLCHAIN=local`, `GOFLAGS=-mod=mod`, or
`-mod=vendor` when the files hold `vendor/modules.txt`: third-party modules come
vendored, as `go mod vendor` writes them) and start from a warm cache in which
the standard library is already compiled. A build reads it in place,
read-only, through our cache helper (`GOCACHEPROG`, `compiler/tools/go_cacheprog/`,
built into the warm cache's folder when it is filled), and writes what it
compiles into its own folder: no build can change what another reads, and none
copies the 41 MB cache.
The module (~2.5–5 MB) is precompiled by the build pipeline, never on an
invoke.
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
from .native import check_native_executable

GO = Toolchain(name="go", language="go")
GLUE_DIR = Path(__file__).resolve().parent.parent / "glue" / "go"
GLUE_MAIN = "nimbus_main.go"
GLUE_JSON = "nimbus_json.go"  # the glue's own JSON: encoding/json was 2 MB of a 4.5 MB hello
GLUE_BINDING = "nimbus_handler.go"
CACHE_HELPER_SOURCE = Path(__file__).resolve().parents[1] / "tools" / "go_cacheprog" / "main.go"
CACHE_HELPER = "nimbus-cacheprog"  # in the warm cache's folder, beside Go's own entries
FLAGS = ("build", "-trimpath", "-buildvcs=false")
MODULE = "function"
VENDORED = "vendor/modules.txt"  # `go mod vendor` wrote it: build from vendor/
# A lone file go build would leave out goes into the build folder as this.
LONE_FILE = "nimbus_source.go"
_MAIN = re.compile(r"^func\s+main\s*\(\s*\)", re.MULTILINE)
_LEADING = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.DOTALL)
_PACKAGE = re.compile(r"package\s+([A-Za-z_][A-Za-z0-9_]*)")

# Standard packages compiled into the warm cache, so a function using them
# builds in about a second.
_WARM_PACKAGES = (
    "bytes", "encoding/base64", "encoding/binary", "encoding/csv", "encoding/hex",
    "encoding/json", "errors", "fmt", "hash/crc32", "crypto/hmac", "crypto/md5",
    "crypto/sha1", "crypto/sha256", "crypto/sha512", "io", "math", "math/rand",
    "net/url", "os", "regexp", "slices", "sort", "strconv", "strings", "text/template",
    "time", "unicode", "unicode/utf8", "maps", "bufio", "html",
)  # fmt: skip

# GOOS/GOARCH per build target: WASI (the default) or a native Linux binary;
# "host", for the cache helper, is the machine the builds run on.
_PLATFORMS = {"wasm": ("wasip1", "wasm"), "native": ("linux", "amd64"), "host": (None, None)}

# Go's internal/syslist (1.27): the names go/build reads as a file's GOOS or GOARCH.
_KNOWN_OS = frozenset((
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
    "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos",
))  # fmt: skip
_KNOWN_ARCH = frozenset((
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips",
    "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le",
    "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm",
))  # fmt: skip

_VENDOR_HINT = (
    "builds are offline: send your modules vendored (run `go mod vendor` and include "
    "go.mod and the vendor/ folder, with vendor/modules.txt, in `files`)"
)

_SAMPLE = """\
func handler(event interface{}, context map[string]string) (interface{}, error) {
	return map[string]interface{}{"event": event, "function": context["function_name"]}, nil
}
"""


def glue_version() -> str:
    return files_version([GLUE_DIR / GLUE_MAIN, GLUE_DIR / GLUE_JSON])


def _binding(handler: str) -> str:
    return f"package main\n\nvar nimbusUserHandler = nimbusAdapt({handler})\n"


def package_clause(text: str) -> re.Match | None:
    """The `package name` clause, if the file starts with one (after comments)."""
    return _PACKAGE.match(text, _LEADING.match(text).end())


def as_main_package(name: str, text: str) -> str:
    """The file's text in package main, with its line numbers unchanged."""
    clause = package_clause(text)
    if clause is None:
        return f"package main\n//line {name}:1:1\n{text}"
    if clause.group(1) == "main":
        return text
    return text[: clause.start(1)] + "main" + text[clause.end(1) :]


def left_out(name: str, target: str = "wasm") -> str | None:
    """Why `go build` for `target` leaves the top-level file `name` out, or None
    (go/build's Import and goodOSArchFile)."""
    goos, goarch = _PLATFORMS[target]
    if name.startswith(("_", ".")):
        return "go ignores files whose names start with '_' or '.'"
    if name.endswith("_test.go"):
        return "go builds *_test.go files only as tests"
    stem = name.partition(".")[0]
    if "_" not in stem:  # `linux.go` is not constrained, `x_linux.go` is
        return None
    parts = stem[stem.index("_") :].split("_")
    if parts[-1] == "test":
        parts.pop()
    if len(parts) >= 2 and parts[-2] in _KNOWN_OS and parts[-1] in _KNOWN_ARCH:
        tags = parts[-2:]
    elif parts[-1] in _KNOWN_OS | _KNOWN_ARCH:
        tags = parts[-1:]
    else:
        return None
    if all(tag in (goos, goarch) for tag in tags):
        return None
    only = f"*_{'_'.join(tags)}.go files only for {'/'.join(tags)}"
    return f"go builds {only}, Nimbus for {goos}/{goarch}"


def build_names(files: dict[str, str], target: str = "wasm") -> dict[str, str]:
    """Each top-level .go file's name in the build folder, for those go build compiles:
    its own, or LONE_FILE for a function's only file that go build would leave out."""
    names = [name for name in files if name.endswith(".go") and "/" not in name]
    reasons = {name: reason for name in names if (reason := left_out(name, target))}
    if len(names) == 1 and reasons:
        return {names[0]: LONE_FILE}
    if names and len(reasons) == len(names):
        listed = ", ".join(f"{name} ({reason})" for name, reason in sorted(reasons.items()))
        raise BuildFailed(
            f"go build would leave out every .go file: {listed}. Rename the one to build, "
            "e.g. to handler.go"
        )
    return {name: name for name in names if name not in reasons}


def _relative(lines: list[str], workdir: Path) -> list[str]:
    """`lines` with the build folder as `.`: go names it in some messages ("build
    constraints exclude all Go files in <folder>"), and it is the server's path."""
    for folder in dict.fromkeys((str(workdir.resolve()), str(workdir))):
        lines = [line.replace(folder + "/", "").replace(folder, ".") for line in lines]
    return lines


def _go_quoted(path: Path) -> str:
    """`path` as one field of GOCACHEPROG, which the go command splits at spaces."""
    text = str(path)
    return f"'{text}'" if "'" not in text else f'"{text}"'


class GoBuilder:
    runtime = "go"
    # The path before GOCACHEPROG: a copy of the whole warm cache per build
    # (~0.15–0.4 s). Off; kept so the go-deploy bench can measure both.
    copy_cache = False

    def __init__(self, config: BuildConfig) -> None:
        self.config = config
        self.toolchains = Toolchains(config)

    # -- what a build is made from ---------------------------------------------

    def _plan(self, request: BuildRequest) -> tuple[str, str | None]:
        files = request.files or {}
        built = build_names(files, request.target or "wasm")
        if not built:
            raise BuildFailed("a Go function needs at least one .go file (at the top level)")
        form = choose_form(request.form, any(_MAIN.search(files[name]) for name in built))
        if form == "handler":
            for reserved in (GLUE_MAIN, GLUE_JSON, GLUE_BINDING):
                if reserved in files:
                    raise BuildFailed(f"{reserved} is the platform's file name; rename yours")
            return form, handler_name(request.handler)
        return form, None

    def cache_key(self, request: BuildRequest) -> str:
        form, handler = self._plan(request)
        return cache_key(
            request,
            handler=handler,
            form=form,
            toolchain=GO.fingerprint,
            glue=glue_version(),
            flags=FLAGS,
        )

    # -- toolchain -------------------------------------------------------------

    def prepare(self, log: BuildLog, target: str = "wasm") -> Path:
        """Install Go if needed and fill its warm GOCACHE for `target`; returns the cache."""
        home = self.toolchains.ensure(GO, log)
        # Keyed by what it holds: the standard packages compiled with these flags,
        # and the cache helper built beside them.
        platform = () if target == "wasm" else _PLATFORMS[target]
        helper = (files_version([CACHE_HELPER_SOURCE]),)
        material = FLAGS + _WARM_PACKAGES + platform + helper
        key = hashlib.sha256("\0".join(material).encode()).hexdigest()
        return self.toolchains.warm_cache(
            GO, key[:16], lambda work: self._fill_cache(home, work, target, log), log
        )

    def _fill_cache(self, home: Path, work: Path, target: str, log: BuildLog) -> None:
        imports = "".join(f'\t_ "{pkg}"\n' for pkg in _WARM_PACKAGES)
        (work / "handler.go").write_text(f"package main\n\nimport (\n{imports})\n\n{_SAMPLE}")
        self._layout(work, "handler")
        self._compile(home, work, "handler", target, log, cache=work / "cache")
        # The helper, for the machine itself, with a cache of its own (thrown away):
        # the warm cache holds only what function builds read.
        helper = work / "cache-helper"
        helper.mkdir()
        shutil.copyfile(CACHE_HELPER_SOURCE, helper / "main.go")
        self._layout(helper, None)
        built = self._compile(home, helper, None, "host", log, cache=helper / RESERVED / "cache")
        shutil.copyfile(built, work / "cache" / CACHE_HELPER)
        (work / "cache" / CACHE_HELPER).chmod(0o755)

    # -- build -----------------------------------------------------------------

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        form, handler = self._plan(request)
        names = write_sources(request.files, workdir)
        target = request.target or "wasm"
        warm = self.prepare(log, target)
        home = self.toolchains.home(GO)
        built_as = build_names(request.files or {}, target)
        for name in names:
            if not name.endswith(".go") or "/" in name:
                continue
            if name not in built_as:
                log.write(f"{name} left out: {left_out(name, target)}")
                continue
            path = workdir / name
            source = path.read_text(encoding="utf-8")
            text = as_main_package(name, source)
            if built_as[name] != name:
                # NOTE: go build would leave the function's only file out by its name;
                # the directive keeps the user's name in messages and stacks.
                if package_clause(source) is not None:
                    text = f"//line {name}:1:1\n{text}"
                path.unlink()
                log.write(f"{name}: {left_out(name, target)}; built as the function's only file")
            (workdir / built_as[name]).write_text(text)
        self._layout(workdir, handler)
        cache = workdir / RESERVED / "cache"
        if self.copy_cache:
            copy_tree(warm, cache)
        goos, goarch = _PLATFORMS[target]
        log.write(f"compiling {form} form with {GO.label} (GOOS={goos} GOARCH={goarch})")
        shared = None if self.copy_cache else warm
        # Modules other than the standard library come vendored (`go mod vendor`):
        # nothing is downloaded at build time.
        mod = "vendor" if VENDORED in names else "mod"
        artifact = self._compile(
            home, workdir, handler, target, log, cache=cache, shared=shared, mod=mod
        )
        if target == "native":
            described = check_native_executable(artifact, log)
            return BuildResult(
                artifact=artifact, kind="native", runtime_version=f"go {GO.version} ({described})"
            )
        log.write(f"module {artifact.stat().st_size} bytes")
        return BuildResult(
            artifact=artifact, kind="module", runtime_version=f"go {GO.version} (wasip1/wasm)"
        )

    def _layout(self, workdir: Path, handler: str | None) -> None:
        if not (workdir / "go.mod").exists():
            major_minor = ".".join(GO.version.split(".")[:2])
            (workdir / "go.mod").write_text(f"module {MODULE}\n\ngo {major_minor}\n")
        if handler is not None:
            for glue in (GLUE_MAIN, GLUE_JSON):
                shutil.copyfile(GLUE_DIR / glue, workdir / glue)
            (workdir / GLUE_BINDING).write_text(_binding(handler))

    def _compile(
        self,
        home: Path,
        workdir: Path,
        handler: str | None,
        target: str,
        log: BuildLog,
        *,
        cache: Path,
        shared: Path | None = None,
        mod: str = "mod",
    ) -> Path:
        """`go build` in the jail. `cache` is the build's own GOCACHE; with `shared`
        (a warm cache), the cache helper serves it read-only in front of `cache`."""
        private = workdir / RESERVED
        goos, goarch = _PLATFORMS[target]
        artifact = private / ("artifact.wasm" if target == "wasm" else "artifact.bin")
        private.mkdir(parents=True, exist_ok=True)
        platform = {"GOOS": goos, "GOARCH": goarch} if goos is not None else {}
        layered = {}
        if shared is not None:
            # NOTE(jail): `shared` is mounted read-only, so neither the helper nor
            # the compiler can change an entry another build will read.
            layered = {
                "GOCACHEPROG": _go_quoted(shared / CACHE_HELPER),
                "NIMBUS_SHARED_GOCACHE": str(shared),
            }
        lines: list[str] = []
        code = run_jailed(
            [str(home / "go" / "bin" / "go"), *FLAGS, "-o", str(artifact), "."],
            workdir=workdir,
            ro_binds=[home] if shared is None else [home, shared],
            env={
                "PATH": f"{home / 'go' / 'bin'}:/usr/bin:/bin",
                "HOME": str(private),
                "GOCACHE": str(cache),
                **layered,
                "GOPATH": str(private / "gopath"),
                **platform,
                "CGO_ENABLED": "0",
                "GOPROXY": "off",
                "GOTOOLCHAIN": "local",
                "GOFLAGS": f"-mod={mod}",
                "GOTELEMETRY": "off",
                "GOENV": "off",
                "GOSUMDB": "off",
            },
            timeout=self.config.timeout_sec,
            memory_mb=self.config.memory_mb,
            max_pids=self.config.max_pids,
            log=log,
            output=lines,
        )
        if code != 0 or not artifact.exists():
            raise self._explain(_relative(lines, workdir), code, handler)
        return artifact

    def _explain(self, lines: list[str], code: int, handler: str | None) -> BuildFailed:
        binding = [line for line in lines if GLUE_BINDING in line]
        if handler is not None and binding:
            wanted = (
                f"func {handler}(event interface{{}}, context map[string]string) interface{{}} "
                f"(or returning (interface{{}}, error); the context parameter may be left out)"
            )
            if any("undefined" in line for line in binding):
                return BuildFailed(
                    f"no function {handler} in the Go source: a handler-form function "
                    f"defines {wanted}, or is a program with func main()"
                )
            return BuildFailed(f"{handler} has the wrong signature for a handler: use {wanted}")
        if any("module lookup disabled by GOPROXY=off" in line for line in lines):
            lines = [*lines, _VENDOR_HINT]
        # `go build` starts its report with "# <package>": not the user's words.
        return failure(
            [line for line in lines if not line.startswith("# ")],
            code,
            self.config.memory_mb,
            "compile error",
        )
