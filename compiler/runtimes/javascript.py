"""`javascript`: source on the shared JavaScript runtime — bundled and checked, never componentized.

A build (well under a second without dependencies) writes the function's
files, installs the npm dependencies of a `package.json` among them (registry
packages only, `--ignore-scripts`), bundles everything from the handler's file
into one CommonJS script with esbuild (ES modules become CommonJS; an inline
source map keeps stack lines the user's), and names the shared runtime
component (SpiderMonkey, built once per machine by
scripts/runtimes/javascript.sh) as the artifact. The build pipeline then asks
the sandbox to `check` the bundle with the engine's own parser.
See docs/decisions/0005-javascript-engine.md.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .. import layout
from .._base import BuildConfig, BuildFailed, BuildLog, BuildRequest, BuildResult
from .._jail import run_jailed
from .._sources import RESERVED, write_sources

SOURCES = layout.JS_RUNTIME_SOURCES  # runtime.js, the build world, package.json
GLUE_DIR = Path(__file__).resolve().parent.parent / "glue" / "javascript"
WORKERS_ADAPTER = GLUE_DIR / "workers-adapter.js"
WIT_DIR = layout.WIT_DIR
RUNTIMES_DIR = layout.RUNTIMES_DIR  # built runtimes, shared with the Python runtime
NODE_MODULES = SOURCES / "node_modules"  # componentize-js and esbuild (npm ci, not in git)

ENTRY_EXTENSIONS = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")
BUNDLE_NAME = "bundle.js"
_NPM_TIMEOUT_SEC = 300
_ESBUILD_TIMEOUT_SEC = 60
_DEPS_LIMIT = 100 << 20  # bytes of installed node_modules
_BUNDLE_WARN = 1 << 20  # every invocation parses the whole bundle
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*\Z")
# npm specs that name a registry package: versions, ranges, dist-tags, npm: aliases.
# NOTE(build): file:, link:, git and URL specs would copy host folders or fetch
# from anywhere, so they are refused before npm sees the package.json.
_REGISTRY_SPEC = re.compile(r"^(npm:(@[a-z0-9._~-]+/)?[a-z0-9._~-]+@)?[A-Za-z0-9 .^~<>=|*+_-]*\Z")
_PACKAGE_NAME = re.compile(r"^(@[a-z0-9._~-]+/)?[a-z0-9._~-]+\Z")
_DEPENDENCY_FIELDS = ("dependencies", "optionalDependencies")

# NOTE(build): the engine is a web one (fetch, crypto.getRandomValues, streams), not
# Node: a package's browser or worker build is the one that runs (uuid's and
# nanoid's Node builds require "crypto", fflate's "worker_threads"), picked as
# Cloudflare's wrangler picks them. Node's built-in modules stay `require` calls
# that fail at run time with a clear message, as they did under --platform=node,
# and process.env.NODE_ENV stays the function's own variable (esbuild would
# replace it with "development" for the browser).
_NODE_BUILTINS = (
    "assert", "assert/strict", "async_hooks", "buffer", "child_process", "cluster", "console",
    "constants", "crypto", "dgram", "diagnostics_channel", "dns", "dns/promises", "domain",
    "events", "fs", "fs/promises", "http", "http2", "https", "inspector", "inspector/promises",
    "module", "net", "os", "path", "path/posix", "path/win32", "perf_hooks", "process",
    "punycode", "querystring", "readline", "readline/promises", "repl", "stream",
    "stream/consumers", "stream/promises", "stream/web", "string_decoder", "sys", "timers",
    "timers/promises", "tls", "trace_events", "tty", "url", "util", "util/types", "v8", "vm",
    "wasi", "worker_threads", "zlib",
)  # fmt: skip
WEB_PLATFORM = (
    "--platform=browser",
    "--conditions=workerd,worker",
    "--define:process.env.NODE_ENV=process.env.NODE_ENV",
    "--external:node:*",
    *(f"--external:{name}" for name in _NODE_BUILTINS),
)


# -- the shared runtime (built by scripts/runtimes/javascript.sh) ------------------------


def runtime_revision() -> int:
    text = (SOURCES / "src" / "runtime.js").read_text()
    found = re.search(r"^const REVISION = (\d+);", text, re.M)
    return int(found.group(1)) if found else 0


def runtime_inputs(home: Path | None = None) -> list[Path]:
    """Everything the runtime component is made from (its id hashes them), in this
    checkout or in the one at `home`."""
    paths = [
        SOURCES / "src" / "runtime.js",
        SOURCES / "wit" / "world.wit",
        SOURCES / "package-lock.json",
        WIT_DIR / "handler.wit",
    ]
    return paths if home is None else [home / path.relative_to(layout.HOME) for path in paths]


def runtime_id(home: Path | None = None) -> str:
    """The runtime this checkout's sources make (or those of the checkout at `home`)."""
    digest = hashlib.sha256()
    for path in runtime_inputs(home):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class JavaScriptRuntime:
    folder: Path
    # e.g. "SpiderMonkey (StarlingMonkey, componentize-js 0.23.0, nimbus-runtime 1)"
    runtime_version: str
    wasm_sha256: str = ""

    @property
    def wasm(self) -> Path:
        return self.folder / "runtime.wasm"


def runtime_folder(root: Path = RUNTIMES_DIR) -> Path:
    return root / f"javascript-{runtime_id()}"


def installed(root: Path = RUNTIMES_DIR) -> JavaScriptRuntime | None:
    """The runtime built from this checkout's sources, or None if not built yet."""
    folder = runtime_folder(root)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return JavaScriptRuntime(folder, manifest["runtime_version"], manifest.get("wasm_sha256", ""))


def esbuild_binary() -> Path:
    """esbuild's native binary from its platform package (no Node start-up per build)."""
    found = sorted(NODE_MODULES.glob("@esbuild/*/bin/esbuild"))
    if not found:
        raise BuildFailed(
            "esbuild is not installed on this server (scripts/runtimes/javascript.sh, "
            "run by `make install`, installs it)"
        )
    return found[0]


# -- the builder -------------------------------------------------------------------------


class JavaScriptBuilder:
    runtime = "javascript"

    def __init__(self, config: BuildConfig | None = None, runtimes_dir: Path | None = None):
        self._config = config or BuildConfig()
        self._runtimes_dir = runtimes_dir or RUNTIMES_DIR

    def build(self, request: BuildRequest, workdir: Path, log: BuildLog) -> BuildResult:
        runtime = installed(self._runtimes_dir)
        if runtime is None:
            raise BuildFailed(
                "the shared JavaScript runtime is not installed on this server "
                "(scripts/runtimes/javascript.sh, run by `make install`, builds it)"
            )
        log.write(f"runtime: {runtime.runtime_version}")
        src = workdir / "src"
        files = write_sources(request.files, src)
        entry, export = entry_point(request.handler, files)
        log.write(f"source: {len(files)} file(s); entry {entry}, export {export!r}")
        if "package.json" in files:
            self._install_dependencies(src, workdir / RESERVED / "npm", log)
        if export == "main" and workers_module(src / entry):
            log.write("a Cloudflare Workers module (export default { fetch }): adapted")
            bundle = self._bundle(src, workers_adapter(src, entry), log)
        else:
            bundle = self._bundle(src, entry, log)
            check_export(bundle.parent / "meta.json", src / entry, entry, export)
        size = bundle.stat().st_size
        log.write(f"bundled: {size} bytes")
        if size > _BUNDLE_WARN:
            log.write(f"note: every invocation parses the whole bundle ({size >> 10} KB)")
        return BuildResult(
            artifact=runtime.wasm,
            kind="runtime",
            runtime_version=runtime.runtime_version,
            bundle=bundle,
        )

    # -- npm ---------------------------------------------------------------------------

    def _install_dependencies(self, src: Path, folder: Path, log: BuildLog) -> None:
        """`npm install --ignore-scripts` of the registry dependencies, in a folder of
        its own (no user .npmrc, no workspaces), then moved to `src/node_modules`."""
        wanted = registry_dependencies(src / "package.json")
        if not any(wanted.values()):
            log.write("package.json has no dependencies to install")
            return
        if (src / "node_modules").exists():
            raise BuildFailed("give either package.json dependencies or a node_modules folder")
        folder.mkdir(parents=True)
        (folder / "package.json").write_text(json.dumps({"private": True, **wanted}, indent=1))
        lock = src / "package-lock.json"
        if lock.exists():
            check_lockfile(lock)
            shutil.copyfile(lock, folder / "package-lock.json")
        names = sorted(set().union(*(d.keys() for d in wanted.values())))
        log.write(f"installing {len(names)} npm package(s): {', '.join(names)}")
        # NOTE(build): npm needs the registry, which the build jail's empty network
        # namespace cannot reach. npm runs no package code here (--ignore-scripts),
        # reads only the package.json written above, and gets an empty environment
        # apart from its cache; bundling (which reads the installed files) is jailed.
        cache = self._config.toolchains_dir / "npm-cache"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(folder),
            "npm_config_cache": str(cache),
            "npm_config_update_notifier": "false",
        }
        command = ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                   "--omit=dev", "--omit=peer", "--no-bin-links", "--install-links=false",
                   "--loglevel=warn"]  # fmt: skip
        try:
            done = subprocess.run(
                command,
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_NPM_TIMEOUT_SEC,
            )
        except FileNotFoundError:
            raise BuildFailed("npm is not installed on this server") from None
        except subprocess.TimeoutExpired:
            raise BuildFailed(f"npm install took over {_NPM_TIMEOUT_SEC} s") from None
        output = (done.stdout + done.stderr).strip()
        if output:
            log.write(output[-4000:])
        if done.returncode != 0:
            errors = [line for line in output.splitlines() if "ERR" in line] or [output]
            raise BuildFailed("npm install failed: " + " ".join(errors)[:1000])
        installed_dir = folder / "node_modules"
        for name, version in resolved_packages(folder / "package-lock.json"):
            log.write(f"  resolved {name}@{version}")
        size = sum(p.stat().st_size for p in installed_dir.rglob("*") if p.is_file())
        if size > _DEPS_LIMIT:
            raise BuildFailed(f"the dependencies take {size >> 20} MB; the limit is 100 MB")
        installed_dir.rename(src / "node_modules")

    # -- esbuild -----------------------------------------------------------------------

    def _bundle(self, src: Path, entry: str, log: BuildLog) -> Path:
        """One CommonJS script from the entry file, with an inline source map."""
        out = src / RESERVED
        out.mkdir(exist_ok=True)
        binary = esbuild_binary()
        command = [
            str(binary), entry, "--bundle", "--format=cjs", *WEB_PLATFORM,
            "--sourcemap=inline", "--sources-content=false", "--charset=utf8",
            f"--outfile={RESERVED}/{BUNDLE_NAME}", f"--metafile={RESERVED}/meta.json",
            "--log-level=warning", "--color=false",
        ]  # fmt: skip
        output: list[str] = []
        # esbuild reads only the function's folder: a `require("/etc/…")` or a
        # symlink out of it finds nothing (the jail has no other files).
        code = run_jailed(
            command,
            workdir=src,
            ro_binds=[binary.parent],
            env={},
            timeout=_ESBUILD_TIMEOUT_SEC,
            memory_mb=self._config.memory_mb,
            max_pids=self._config.max_pids,
            log=log,
            output=output,
        )
        if code != 0:
            raise BuildFailed(esbuild_errors(output, src))
        bundle = out / BUNDLE_NAME
        relative_map_sources(bundle)
        return bundle


_MAP_PREFIX = "//# sourceMappingURL=data:application/json;base64,"


def relative_map_sources(bundle: Path) -> None:
    """Name the source map's files from the function's folder ("handler.js", not
    "../handler.js": the bundle was written one folder down)."""
    text = bundle.read_text(encoding="utf-8")
    at = text.rfind(_MAP_PREFIX)
    if at < 0:
        return
    source_map = json.loads(base64.b64decode(text[at + len(_MAP_PREFIX) :].strip()))
    source_map["sources"] = [s.removeprefix("../") for s in source_map.get("sources", [])]
    encoded = base64.b64encode(json.dumps(source_map, separators=(",", ":")).encode()).decode()
    bundle.write_text(text[:at] + _MAP_PREFIX + encoded + "\n", encoding="utf-8")


def entry_point(handler: str | None, files: list[str]) -> tuple[str, str]:
    """("handler.js", "main") from "handler.main": the entry file and its export."""
    text = handler or "handler.main"
    module, _, export = text.rpartition(".")
    if not module or not _IDENTIFIER.match(export):
        raise BuildFailed(
            f"handler must look like 'file.export' (e.g. 'handler.main'), not {text!r}"
        )
    candidates = [module] if module.endswith(ENTRY_EXTENSIONS) else []
    candidates += [module + ext for ext in ENTRY_EXTENSIONS]
    for name in candidates:
        if name in files:
            return name, export
    raise BuildFailed(
        f"handler {text!r}: no {module}.js among the function's files ({', '.join(files)})"
    )


def registry_dependencies(package_json: Path) -> dict[str, dict[str, str]]:
    """The dependency maps of a user's package.json, every spec a registry package."""
    try:
        manifest = json.loads(package_json.read_text())
    except ValueError as exc:
        raise BuildFailed(f"package.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise BuildFailed("package.json must be a JSON object")
    if manifest.get("workspaces") or manifest.get("bundleDependencies"):
        raise BuildFailed("package.json: workspaces and bundleDependencies are not supported")
    wanted: dict[str, dict[str, str]] = {}
    for field in _DEPENDENCY_FIELDS:
        deps = manifest.get(field) or {}
        if not isinstance(deps, dict):
            raise BuildFailed(f"package.json: {field} must be an object of name → version")
        for name, spec in deps.items():
            if not isinstance(spec, str) or not _PACKAGE_NAME.match(name):
                raise BuildFailed(f"package.json {field}: {name!r} is not a package name")
            if not _REGISTRY_SPEC.match(spec.strip()):
                raise BuildFailed(
                    f"package.json {field}: {name} {spec!r}: only versions and ranges of "
                    "registry packages are supported (no file:, link:, git or URL specs)"
                )
        if deps:
            wanted[field] = {str(k): str(v).strip() for k, v in deps.items()}
    return wanted


@functools.cache
def npm_registry() -> str:
    """The registry npm installs from here: npm's own setting, read from npm itself."""
    with tempfile.TemporaryDirectory() as home:  # no user .npmrc, as for the install
        done = subprocess.run(
            ["npm", "config", "get", "registry"],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    registry = done.stdout.strip()
    if done.returncode != 0 or not registry.startswith("https://"):
        raise BuildFailed("cannot tell which registry npm uses on this server")
    return registry.rstrip("/") + "/"


def check_lockfile(lock: Path) -> None:
    """A user's package-lock.json may only point at the registry npm uses here.

    NOTE(security): npm runs on the host (it needs the registry), so a URL it fetches
    is the server's request. Every place npm reads one is checked: `packages` (npm 7+)
    and the legacy `dependencies` tree, whose `resolved` (or URL `version`) npm still
    follows — a lockfileVersion 1 file made npm GET a private address from the server
    (and a git URL would run git with the server's credentials)."""
    try:
        data = json.loads(lock.read_text())
        packages = data.get("packages")
        version = data.get("lockfileVersion")
    except (ValueError, AttributeError):
        raise BuildFailed("package-lock.json is not a valid npm lockfile") from None
    if not isinstance(packages, dict) or not isinstance(version, int) or version < 2:
        raise BuildFailed(
            "package-lock.json must be lockfileVersion 2 or 3 (written by npm 7 or later): "
            "run `npm install` with a current npm, or leave the lockfile out"
        )
    registry = npm_registry()
    for path, entry in _lock_entries(packages, data.get("dependencies")):
        resolved, pinned = entry.get("resolved", ""), entry.get("version", "")
        if (
            entry.get("link")
            or not isinstance(resolved, str)
            or (resolved and not resolved.startswith(registry))
            or (isinstance(pinned, str) and _names_a_place(pinned))
        ):
            raise BuildFailed(
                f"package-lock.json: {path} does not come from the npm registry "
                f"({resolved or pinned or 'a link'})"
            )


def _names_a_place(version: str) -> bool:
    """A lockfile `version` that is a place rather than a version: a URL, git, a path
    (an `npm:` alias names a registry package)."""
    text = version.strip().lower()
    return not text.startswith("npm:") and (":" in text or text.startswith((".", "/", "~/")))


def _lock_entries(packages: dict, legacy: object, at: str = ""):
    """(path, entry) of every package a lockfile names, the legacy tree's nested ones too."""
    for path, entry in packages.items():
        if path and isinstance(entry, dict):
            yield path, entry
    if isinstance(legacy, dict):
        for name, entry in legacy.items():
            if isinstance(entry, dict):
                yield f"{at}dependencies/{name}", entry
                yield from _lock_entries({}, entry.get("dependencies"), f"{at}{name}/")


def resolved_packages(lock: Path) -> list[tuple[str, str]]:
    try:
        packages = json.loads(lock.read_text()).get("packages", {})
    except (OSError, ValueError):
        return []
    found = []
    for path, entry in sorted(packages.items()):
        if path.startswith("node_modules/") and isinstance(entry, dict):
            found.append((path.removeprefix("node_modules/"), str(entry.get("version", "?"))))
    return found


def esbuild_errors(output: list[str], src: Path) -> str:
    """esbuild's messages, e.g. "handler.js:3:13: ERROR: Unexpected "*"", kept short."""
    text = "\n".join(output).replace(str(src) + "/", "")
    errors = re.findall(r"^\s*(\S+:\d+:\d+): (ERROR: .*)$", text, re.MULTILINE)
    if errors:
        return "; ".join(f"{_one_based(where)}: {message}" for where, message in errors[:5])
    boxed = re.findall(r"✘ \[ERROR\] (.*)\n\n\s+(\S+:\d+:\d+):", text)
    if boxed:
        return "; ".join(f"{_one_based(where)}: {message}" for message, where in boxed[:5])
    return "bundling failed: " + (text.strip()[-1000:] or "esbuild gave no message")


def _one_based(where: str) -> str:
    """`file:line:column` with esbuild's 0-based column counted from 1, as the C, Go and
    Rust compilers count (and the console marks): `return x +* 2` said column 12 for the `*`
    in the 13th, and an error at a line's start said column 0."""
    location, _, column = where.rpartition(":")
    return f"{location}:{int(column) + 1}"


def check_export(meta: Path, entry_path: Path, entry: str, export: str) -> None:
    """The entry exports `export`: ES modules by their export statements (esbuild's
    metafile says which format the entry is), CommonJS leniently (assignments to
    `exports` take many shapes; the runtime names a missing export at run time)."""
    try:
        inputs = json.loads(meta.read_text())["inputs"]
    except (OSError, ValueError, KeyError):
        return
    info = inputs.get(entry) or inputs.get(str(PurePosixPath(entry))) or {}
    source = entry_path.read_text(encoding="utf-8", errors="replace")
    esm = info.get("format") == "esm"
    if not _exports(source, export, esm=esm):
        raise BuildFailed(
            f"{entry} does not export {export!r} (expected `export [async] function {export}`, "
            f"`exports.{export} = …` or `module.exports = {{ {export} }}`)"
            + _lambda_hint(source, entry, export, esm=esm)
            + (_WORKERS_HINT if _WORKERS_FETCH.search(source) else "")
        )


def _exports(source: str, export: str, *, esm: bool) -> bool:
    name = re.escape(export)
    if esm:
        patterns = [
            rf"\bexport\s+(?:async\s+)?(?:function\s*\*?|const|let|var|class)\s+{name}\b",
            rf"\bexport\s*\{{[^}}]*\b{name}\b[^}}]*\}}",  # export { x as main }
            rf"\bexport\s+default\b[\s\S]*\b{name}\b",  # export default { main }
            r"\bexport\s*\*\s*from\b",
        ]
        if export == "default":
            patterns.append(r"\bexport\s+default\b")
        return any(re.search(p, source) for p in patterns)
    return bool(re.search(r"\bexports\b", source) and re.search(rf"\b{name}\b", source))


def _lambda_hint(source: str, entry: str, export: str, *, esm: bool) -> str:
    """AWS Lambda's Node.js functions export `handler`: name the setting that serves it."""
    if export == "handler" or not _exports(source, "handler", esm=esm):
        return ""
    handler = f"{PurePosixPath(entry).with_suffix('')}.handler"
    return (
        f"; it exports `handler` (AWS Lambda's name): set the function's handler to "
        f'{handler!r} (`nimbus deploy --handler {handler}`, or "handler" in the API)'
    )


def workers_module(entry_path: Path) -> bool:
    """A Cloudflare Workers module: a default export and no `main` of its own."""
    source = entry_path.read_text(encoding="utf-8", errors="replace")
    default = re.search(r"\bexport\s+default\b", source)
    return bool(default) and not _exports(source, "main", esm=True)


def workers_adapter(src: Path, entry: str) -> str:
    """Write the Workers adapter into the build's own folder, importing the user's
    module; answers its path, the entry to bundle from."""
    adapter = PurePosixPath(RESERVED) / WORKERS_ADAPTER.name
    (src / RESERVED).mkdir(exist_ok=True)
    text = WORKERS_ADAPTER.read_text().replace('"USER_MODULE"', json.dumps(f"../{entry}"))
    (src / adapter).write_text(text)
    return str(adapter)


# A Cloudflare Workers script is the likeliest wrong shape a newcomer brings.
# (A module's `export default { fetch }` is served by the Workers adapter; the older
# service-worker syntax is not.)
_WORKERS_FETCH = re.compile(r"addEventListener\(\s*[\"']fetch[\"']")
_WORKERS_HINT = (
    "; this looks like a Cloudflare Workers script in the service-worker syntax "
    "(addEventListener('fetch', …)): Nimbus serves Workers written as modules, "
    "`export default { async fetch(request, env, ctx) { … } }`, or calls "
    "`main(event, context)` with the event's JSON and returns its result (through a webhook "
    "URL the event is AWS Lambda's function-URL payload, and a {statusCode, headers, body} "
    "result shapes the HTTP reply)"
)
