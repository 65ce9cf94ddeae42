"""The designs Nimbus replaces, for the cold-start rows: a process or a container per call.

For each example function: the same program as a host process (`python3`
running the handler, `node` running the handler bundled the way the
JavaScript builder bundles it, the native binary of a compiled example built
for the host with the builder's own glue) and the same process in a `docker
run --rm -i --pull=never` per call, in the image native functions run in.
Builds here are of the repository's own examples (trusted code), on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..servers import REPO

# Host build caches kept between runs (like the toolchains' own warm caches).
HOST_CACHE = REPO / ".cache" / "bench-host-builds"
TOOLCHAINS = REPO / ".cache" / "toolchains"
SYSTEM_PYTHON = "/usr/bin/python3"  # the same interpreter on the host and in the container
NODE = shutil.which("node") or "/usr/bin/node"

PY_RUNNER = """import json, sys
from {module} import {function}
print(json.dumps({function}(json.load(sys.stdin), json.loads(sys.argv[1]))))
"""
JS_RUNNER = """const {{ {function} }} = require("./{module}");
let text = "";
process.stdin.on("data", (d) => (text += d)).on("end", async () => {{
  console.log(JSON.stringify(await {function}(JSON.parse(text), JSON.parse(process.argv[2]))));
}});
"""


@dataclass(frozen=True)
class PerCall:
    """One program, runnable as a host process or in a container, one per call."""

    argv: list[str]  # on the host
    container_argv: list[str]  # inside the container
    mounts: list[tuple[Path, str]]  # host path -> container path, read-only
    context_as: str  # "argv" (python/node runners) or "env" (NIMBUS_CONTEXT, compiled glue)
    built_ms: float  # what building it for the host took (context)
    described: str
    result_fd3: bool = False  # the glue writes the result to fd 3 (Rust's WASM result channel)

    def _args(self, argv: list[str], context: dict) -> tuple[list[str], dict[str, str]]:
        text = json.dumps(context)
        if self.context_as == "argv":
            return [*argv, text], {}
        return argv, {"NIMBUS_CONTEXT": text}

    def process(self, event: bytes, context: dict) -> tuple[float, bytes]:
        argv, extra = self._args(self.argv, context)
        env = {"PATH": "/usr/bin:/bin", **extra}
        return timed(argv, event, env=env, fd3_to_stdout=self.result_fd3)

    def docker_run(self, docker: list[str], image: str, event: bytes, context: dict):
        argv, extra = self._args(self.container_argv, context)
        cmd = [*docker, "run", "--rm", "-i", "--pull=never", "--network=none", "--read-only",
               "--user=65534:65534", "--log-driver=none"]  # fmt: skip
        cmd += [f"--env={k}={v}" for k, v in extra.items()]
        cmd += [f"--volume={host}:{inside}:ro" for host, inside in self.mounts]
        return timed([*cmd, image, *argv], event)


def timed(
    cmd: list[str], event: bytes, env: dict[str, str] | None = None, fd3_to_stdout: bool = False
) -> tuple[float, bytes]:
    # fd 3 made in the child after its stdio is set up (close_fds would close it again)
    dup = (lambda: os.dup2(1, 3)) if fd3_to_stdout else None
    started = time.perf_counter()
    out = subprocess.run(cmd, input=event, capture_output=True, env=env, timeout=120,
                         preexec_fn=dup, close_fds=not fd3_to_stdout)  # fmt: skip
    took = (time.perf_counter() - started) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} … failed ({out.returncode}): {out.stderr[-1500:]!r}")
    return took, out.stdout


def result_json(stdout: bytes | str) -> object:
    """The result a program printed: its last line (a handler may log to stdout first)."""
    text = stdout.decode() if isinstance(stdout, bytes) else stdout
    return json.loads(text.strip().splitlines()[-1])


def keep_times(label: str, fresh: list[dict], runs: list) -> None:
    """Replace each (ms, stdout) in `runs` by its ms once its result is checked: every
    side must compute what Nimbus computed, or the comparison means nothing."""
    want = result_json(fresh[0]["output"])
    for i, (took, out) in enumerate(runs):
        if result_json(out) != want:
            raise RuntimeError(f"{label}: Nimbus {want!r} != reference {out!r}")
        runs[i] = took


def python_handler(files: dict[str, str], handler: str, work: Path) -> PerCall:
    """`python3 run.py CONTEXT` importing the user's handler module, once per call."""
    module, function = handler.rsplit(".", 1)
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    (work / "run.py").write_text(PY_RUNNER.format(module=module, function=function))
    # Bytecode compiled once, as a deployed script would have it.
    subprocess.run([SYSTEM_PYTHON, "-m", "compileall", "-q", str(work)], check=True)
    return PerCall(
        [SYSTEM_PYTHON, str(work / "run.py")],
        [SYSTEM_PYTHON, "/srv/function/run.py"],
        [(work, "/srv/function"), (Path("/usr"), "/usr")],
        "argv",
        0.0,
        f"{SYSTEM_PYTHON} run.py (imports {module}.{function}), one process per call",
    )


def node_handler(files: dict[str, str], handler: str, work: Path) -> PerCall:
    """`node bundle.js CONTEXT`: the handler and its npm dependencies bundled by esbuild
    (as the JavaScript builder does) into one CommonJS file, once per call."""
    from compiler.runtimes.javascript import esbuild_binary

    module, function = handler.rsplit(".", 1)
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    started = time.perf_counter()
    if "package.json" in files:
        npm_cache = REPO / ".cache" / "toolchains" / "npm-cache"
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                        "--cache", str(npm_cache), "--prefer-offline"],
                       cwd=work, check=True, capture_output=True, timeout=300)  # fmt: skip
    (work / "run.js").write_text(JS_RUNNER.format(module=module, function=function))
    subprocess.run([str(esbuild_binary()), "run.js", "--bundle", "--platform=node",
                    "--format=cjs", "--log-level=warning", "--outfile=bundle.js"],
                   cwd=work, check=True, timeout=120)  # fmt: skip
    built = (time.perf_counter() - started) * 1000
    return PerCall(
        [NODE, str(work / "bundle.js")],
        [NODE, "/srv/function/bundle.js"],
        [(work, "/srv/function"), (Path("/usr"), "/usr")],
        "argv",
        built,
        f"{NODE} bundle.js (esbuild bundle of {module}.{function}), one process per call",
    )


def native_binary(
    binary: Path, built_ms: float, described: str, result_fd3: bool = False
) -> PerCall:
    # In the container a shell gives the binary its fd 3, as the host's preexec does.
    inside = ["/bin/sh", "-c", "exec /function 3>&1"] if result_fd3 else ["/function"]
    return PerCall([str(binary)], inside, [(binary, "/function")], "env", built_ms, described,
                   result_fd3)  # fmt: skip


def c_native(files: dict[str, str], work: Path) -> PerCall:
    """The C builder's own `"target": "native"` build: gcc -static with the same glue.
    Where that fails to link (it passes no -lm), the same gcc command plus -lm."""
    from compiler import BuildConfig, BuildFailed, BuildLog, BuildRequest, builder_for

    request = BuildRequest("fn_bench", 1, "c", None, None, "native", files=files)
    binary = work / "handler-native"
    started = time.perf_counter()
    try:
        builder = builder_for("c", BuildConfig(toolchains_dir=TOOLCHAINS))
        result = builder.build(request, work / "build", BuildLog(work / "build.log"))
        shutil.copyfile(result.artifact, binary)
        described = "the C builder's native target (gcc -O2 -static)"
    except BuildFailed as exc:
        if "undefined reference" not in exc.args[0]:
            raise
        started = time.perf_counter()  # the failed attempt is not the reference's cost
        _gcc_with_libm(files, work, binary)
        described = ("gcc -O2 -static with the C glue and -lm (the C builder's native target "
                     "does not link: it passes no -lm)")  # fmt: skip
    built = (time.perf_counter() - started) * 1000
    binary.chmod(0o755)
    return native_binary(binary, built, described)


def _gcc_with_libm(files: dict[str, str], work: Path, binary: Path) -> None:
    from compiler.runtimes.c import GLUE_DIR

    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (src / name).write_text(text)
    sources = [str(src / name) for name in files if name.endswith(".c")]
    glue = [GLUE_DIR / "nimbus.c", GLUE_DIR / "nimbus_main.c"]
    subprocess.run(["gcc", "-O2", "-static", "-I", str(GLUE_DIR), "-include",
                    str(GLUE_DIR / "nimbus.h"), "-DNIMBUS_HANDLER=handler", *sources,
                    *map(str, glue), "-lm", "-o", str(binary)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip


def go_native(files: dict[str, str], work: Path) -> PerCall:
    """`go build` for linux/amd64 with the toolchain and glue the Go builder uses."""
    from compiler import BuildConfig
    from compiler.runtimes import go

    builder = go.GoBuilder(BuildConfig(toolchains_dir=TOOLCHAINS))
    home = builder.toolchains.home(go.GO)
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (src / name).write_text(go.as_main_package(name, text))
    # NOTE(bench): the builder's own go.mod, glue and binding of `handler`.
    builder._layout(src, go.handler_name(None))
    binary = work / "handler-native"
    env = {"PATH": f"{home / 'go' / 'bin'}:/usr/bin:/bin", "HOME": str(work),
           "GOCACHE": str(HOST_CACHE / "go"), "GOPATH": str(work / "gopath"),
           "CGO_ENABLED": "0", "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod",
           "GOTELEMETRY": "off", "GOENV": "off", "GOSUMDB": "off"}  # fmt: skip
    started = time.perf_counter()
    subprocess.run([str(home / "go" / "bin" / "go"), *go.FLAGS, "-o", str(binary), "."],
                   cwd=src, env=env, check=True, capture_output=True, timeout=600)  # fmt: skip
    built = (time.perf_counter() - started) * 1000
    return native_binary(binary, built, f"go {go.GO.version} build, linux/amd64, static")


def rust_native(files: dict[str, str], work: Path) -> PerCall:
    """cargo build --release for the host with the Rust builder's glue, manifest and
    offline crates; `+crt-static` so the binary runs in the container as it is."""
    from compiler import BuildConfig, BuildRequest
    from compiler.runtimes import rust

    builder = rust.RustBuilder(BuildConfig(toolchains_dir=TOOLCHAINS))
    home = builder.toolchains.home(rust.RUST).resolve()
    plan = rust._plan(BuildRequest("fn_bench", 1, "rust", None, None, None, files=files))
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name, text in plan.files.items():
        (src / name).write_text(text)
    rust._write_glue(src, plan.entry, plan.handler_fn)
    (src / "Cargo.toml").write_text(rust._cargo_toml(plan.package, rust.GLUE_MAIN, plan.manifest))
    usr = home / "usr"
    cargo_home = HOST_CACHE / "cargo-home"
    cargo_home.mkdir(parents=True, exist_ok=True)
    (cargo_home / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "debian"\n\n'
        f"[source.debian]\ndirectory = {json.dumps(str(usr / 'share/cargo/registry'))}\n"
    )
    target = HOST_CACHE / "rust-target"
    env = {"PATH": f"{usr / 'bin'}:/usr/bin:/bin", "HOME": str(work),
           "LD_LIBRARY_PATH": str(usr / "lib/x86_64-linux-gnu"), "CARGO_HOME": str(cargo_home),
           "CARGO_TARGET_DIR": str(target), "CARGO_NET_OFFLINE": "true",
           "RUSTFLAGS": "-C target-feature=+crt-static",
           "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER": "/usr/bin/gcc"}  # fmt: skip
    started = time.perf_counter()
    subprocess.run([str(usr / "bin" / "cargo"), "build", "--offline", "--release", "--quiet",
                    "--target", "x86_64-unknown-linux-gnu"],
                   cwd=src, env=env, check=True, capture_output=True, timeout=900)  # fmt: skip
    built = (time.perf_counter() - started) * 1000
    binary = work / "handler-native"
    shutil.copyfile(target / "x86_64-unknown-linux-gnu" / "release" / plan.package, binary)
    binary.chmod(0o755)
    uses_fd3 = b"nimbus_result_fd3" in (src / rust.GLUE_MODULE).read_bytes()
    return native_binary(binary, built, f"rustc {rust.RUST.version}, x86_64 Linux, static"
                         + (", result on fd 3 (the glue's channel)" if uses_fd3 else ""),
                         result_fd3=uses_fd3)  # fmt: skip


def build(runtime: str, files: dict[str, str], handler: str | None, work: Path) -> PerCall:
    work.mkdir(parents=True, exist_ok=True)
    if runtime == "python":
        return python_handler(files, handler or "handler.main", work)
    if runtime == "javascript":
        return node_handler(files, handler or "handler.main", work)
    return {"c": c_native, "go": go_native, "rust": rust_native}[runtime](files, work)


def docker_cli() -> list[str] | None:
    """`docker -H HOST` for the local engine, or None when no client is installed."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    host = os.environ.get("DOCKER_HOST")
    return [docker] if host is None else [docker, "-H", host]
