"""The build jail: what a compiler can see, reach and use (real bubblewrap)."""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from compiler import BuildFailed, BuildLog, abandon_build, bounded_folder
from compiler._cgroups import builds_parent
from compiler._jail import LOG_LINE_CHARS, LOG_LINES, TAIL_LINES, run_jailed

PYTHON = "/usr/bin/python3"  # the system's, under the read-only /usr


@pytest.fixture
def jail(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    log = BuildLog(tmp_path / "build.log")

    def run(script: str, *, ro_binds=(), env=None, timeout=30, memory_mb=512, max_pids=0):
        output: list[str] = []
        code = run_jailed(
            [PYTHON, "-c", script],
            workdir=workdir,
            ro_binds=list(ro_binds),
            env={"PATH": "/usr/bin:/bin", **(env or {})},
            timeout=timeout,
            memory_mb=memory_mb,
            log=log,
            output=output,
            max_pids=max_pids,
        )
        return code, output

    run.workdir = workdir
    run.log = log
    yield run
    log.close()


def test_only_the_build_folder_is_writable_and_binds_are_read_only(jail, tmp_path):
    toolchain = tmp_path / "toolchain"
    toolchain.mkdir()
    (toolchain / "cc").write_text("compiler")
    script = f"""
import os
open("out.txt", "w").write("built")
print(open({str(toolchain / "cc")!r}).read())
try:
    open({str(toolchain / "cc")!r}, "w")
except OSError as e:
    print("toolchain:", e.strerror)
print("cwd:", os.getcwd())
"""
    code, output = jail(script, ro_binds=[toolchain])
    assert code == 0, output
    assert (jail.workdir / "out.txt").read_text() == "built"
    assert output == ["compiler", "toolchain: Read-only file system", f"cwd: {jail.workdir}"]


def test_host_files_outside_the_binds_are_not_there(jail, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    repo_file = Path(__file__).resolve()
    script = f"""
import os
for path in [{str(secret)!r}, {str(repo_file)!r}, "/etc/passwd", "/etc/hostname", "/root"]:
    print(path, os.path.exists(path))
print(sorted(os.listdir("/")))
"""
    code, output = jail(script)
    assert code == 0, output
    assert all(line.endswith(" False") for line in output[:5]), output
    assert output[5] == str(sorted(["bin", "dev", "lib", "lib64", "proc", "sbin", "tmp", "usr"]))


def test_no_network(jail):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(5)
        port = server.getsockname()[1]
        accepted = []
        thread = threading.Thread(target=lambda: accepted.append(_accept(server)))
        thread.start()
        script = f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3)
    print("connected")
except OSError as e:
    print("refused:", type(e).__name__)
try:
    socket.getaddrinfo("example.org", 443)
    print("resolved")
except OSError as e:
    print("no dns:", type(e).__name__)
"""
        code, output = jail(script)
        thread.join()
    assert code == 0
    assert output[0].startswith("refused:") and output[1].startswith("no dns:")
    assert accepted == [None]


def _accept(server: socket.socket):
    try:
        conn, _ = server.accept()
        conn.close()
        return "accepted"
    except TimeoutError:
        return None


def test_environment_is_only_what_the_build_gives(jail, monkeypatch):
    monkeypatch.setenv("NIMBUS_API_KEY", "host-secret")
    code, output = jail("import os; print(sorted(os.environ))", env={"GOOS": "wasip1"})
    assert code == 0
    # PWD comes from --chdir, LC_CTYPE from Python's own C-locale coercion.
    assert set(ast.literal_eval(output[0])) - {"PWD", "LC_CTYPE"} == {"GOOS", "PATH"}


def test_no_capabilities_and_no_new_user_namespaces(jail):
    script = """
import os
status = open("/proc/self/status").read()
print([l for l in status.splitlines() if l.startswith("CapEff")][0].split()[1])
print(os.getuid())
import subprocess
done = subprocess.run(["unshare", "--user", "true"], stderr=subprocess.DEVNULL)
print("unshare:", done.returncode)
"""
    code, output = jail(script)
    assert code == 0, output
    assert output[0] == "0000000000000000" and output[1] == "1000"
    assert output[2] != "unshare: 0"


def test_timeout_kills_the_whole_jail(jail):
    marker = "12345.678"
    script = f"""
import subprocess, time
subprocess.Popen(["sleep", "{marker}"])
time.sleep(600)
"""
    started = time.monotonic()
    with pytest.raises(BuildFailed, match="build timed out after 2 s"):
        jail(script, timeout=2)
    assert time.monotonic() - started < 10
    time.sleep(0.5)
    leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]
    assert leftovers == []


def test_an_abandoned_build_leaves_no_process_and_no_mount(tmp_path):
    """A server stopping mid-build hands the build back and abandons it: its jail is
    killed and its tmpfs unmounted at once. Before, both went only when the build's thread
    ended, and the process ended first: the tmpfs stayed mounted, holding what the build
    wrote in memory, until a server started on the same data folder again."""
    folder = tmp_path / "fn_x-1-abc"
    out = folder / "out"
    out.mkdir(parents=True)
    log = BuildLog(tmp_path / "build.log")
    marker = "23456.789"
    script = f"""
import pathlib, subprocess, time
pathlib.Path("object.o").write_bytes(b"x" * (4 << 20))
subprocess.Popen(["sleep", "{marker}"])
pathlib.Path("started").touch()
time.sleep(600)
"""
    ended: dict = {}

    def build() -> None:
        with bounded_folder(out, 16) as bounded:
            ended["bounded"] = bounded
            ended["code"] = run_jailed([PYTHON, "-c", script], workdir=out, ro_binds=[],
                                       env={"PATH": "/usr/bin:/bin"}, timeout=600,
                                       memory_mb=512, log=log)  # fmt: skip

    thread = threading.Thread(target=build, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (out / "started").exists():
        assert time.monotonic() < deadline and thread.is_alive(), log.text()
        time.sleep(0.05)
    if not ended["bounded"]:
        pytest.skip("mounting a tmpfs needs CAP_SYS_ADMIN")
    assert f" {out} " in Path("/proc/self/mountinfo").read_text()
    assert abandon_build(folder) == (1, 1)  # one jail killed, one folder unmounted
    assert f" {out} " not in Path("/proc/self/mountinfo").read_text()
    thread.join(10)
    assert not thread.is_alive() and ended["code"] == -9
    time.sleep(0.5)
    leftovers = [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]
    assert leftovers == []
    assert abandon_build(folder) == (0, 0)
    # its thread, had it been about to start another compiler or mount: it does not
    with pytest.raises(BuildFailed, match="abandoned"):
        run_jailed([PYTHON, "-c", "pass"], workdir=out, ro_binds=[], env={}, timeout=10,
                   memory_mb=512, log=log)  # fmt: skip
    with pytest.raises(BuildFailed, match="abandoned"), bounded_folder(out, 16):
        pass
    assert f" {out} " not in Path("/proc/self/mountinfo").read_text()
    log.close()


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_memory_limit_stops_a_hungry_process(jail):
    script = """
try:
    hog = bytearray(600 * 1024 * 1024)
    print("allocated")
except MemoryError:
    print("MemoryError")
"""
    assert jail(script, memory_mb=256)[1] == ["MemoryError"]
    assert jail(script, memory_mb=1024)[1] == ["allocated"]


def test_output_is_streamed_to_the_log_and_bounded(jail):
    code, output = jail(f"for i in range({LOG_LINES + 500}): print('line', i)")
    assert code == 0
    text = jail.log.text()
    assert "] line 0\n" in text and f"] line {LOG_LINES - 1}\n" in text
    assert f"] line {LOG_LINES}\n" not in text
    assert "500 more lines of build output not shown" in text
    assert len(output) == TAIL_LINES and output[-1] == f"line {LOG_LINES + 499}"


def test_an_endless_line_is_read_in_bounded_pieces(jail):
    """A compiler may print one line without end (a macro's expansion in an error): the
    server must not hold it whole in memory to cut it to LOG_LINE_CHARS."""
    script = "import sys; sys.stdout.write('x' * (64 << 20)); print(); print('after')"
    tracemalloc.start()
    try:
        code, output = jail(script)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0
    assert peak < 8 << 20, f"{peak >> 20} MiB held for one line"
    assert output[-1] == "after"
    assert output[-2] == "x" * LOG_LINE_CHARS + " [line cut]"
    assert jail.log.text().count("[line cut]") == 1


def test_exit_code_is_returned(jail):
    assert jail("raise SystemExit(7)")[0] == 7


def _jail_processes(marker: str) -> list[str]:
    return [pid for pid in os.listdir("/proc") if pid.isdigit() and marker in _cmdline(pid)]


@pytest.mark.skipif(builds_parent() is None, reason="no pids cgroup can be made here")
def test_a_build_that_forks_without_end_stops_at_the_process_bound(jail):
    marker = "forker-23456"
    script = f"""
import os, time
started = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(120)  # {marker}
            os._exit(0)
        started += 1
except OSError as e:
    print("fork failed after", started, "children:", e.strerror)
    raise SystemExit(1)
"""
    began = time.monotonic()
    with pytest.raises(BuildFailed, match="limit of 24 processes and threads"):
        jail(script, max_pids=24)
    assert time.monotonic() - began < 20
    text = jail.log.text()
    assert "limit of 24 processes and threads (BUILD_MAX_PIDS)" in text
    started = int(text.split("fork failed after ")[1].split()[0])
    assert 10 <= started < 24  # bwrap and its init count too
    time.sleep(0.5)
    assert _jail_processes(marker) == []
    assert not any(p.name.startswith("build-") for p in builds_parent().iterdir())


@pytest.mark.skipif(builds_parent() is None, reason="no pids cgroup can be made here")
def test_the_process_bound_leaves_a_build_within_it_alone(jail):
    script = """
import subprocess
procs = [subprocess.Popen(["sleep", "0.5"]) for _ in range(16)]
print(sum(p.wait() == 0 for p in procs))
"""
    assert jail(script, max_pids=24) == (0, ["16"])


def test_a_build_writing_without_end_stops_at_the_disk_bound(jail):
    script = """
import os
chunk, written = b"x" * (1 << 20), 0
try:
    for n in range(10_000):
        with open(f"junk-{n % 7}.bin", "ab") as f:
            f.write(chunk)
        written += 1
except OSError as e:
    print("wrote", written, "MB:", e.strerror)
    raise SystemExit(1)
"""
    with bounded_folder(jail.workdir, 48) as bounded:
        if not bounded:
            pytest.skip("mounting a tmpfs needs CAP_SYS_ADMIN")
        with pytest.raises(BuildFailed, match="used up its 48 MB of disk space"):
            jail(script)
        assert jail("open('ok.bin', 'wb').write(b'fits')") == (0, [])
    text = jail.log.text()
    assert "No space left on device" in text
    assert 40 <= int(text.split("wrote ")[1].split()[0]) <= 48
    assert "the build used up its 48 MB of disk space (BUILD_MAX_DISK_MB)" in text
    assert list(jail.workdir.iterdir()) == []  # the tmpfs and all in it are gone


_AS_ANOTHER_USER = """
import sys
from pathlib import Path
from compiler import BuildFailed, BuildLog
from compiler._jail import run_jailed
work = Path(sys.argv[1])
log = BuildLog(work / "build.log")
try:
    code = run_jailed([sys.argv[2], "-c", sys.argv[3]], workdir=work, ro_binds=[],
                      env={"PATH": "/usr/bin:/bin"}, timeout=30, memory_mb=512, log=log,
                      max_pids=24)
    print("exit", code)
except BuildFailed as exc:
    print(exc.message)
print(log.text())
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to become nobody"
)
def test_a_server_that_is_not_root_bounds_processes_with_rlimit_nproc():
    forker = """
import os, time
started = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        started += 1
except OSError as e:
    print("fork failed after", started, "children:", e.strerror)
    raise SystemExit(1)
"""
    work = Path(tempfile.mkdtemp(prefix="jail-nobody-"))
    try:
        os.chown(work, 65534, 65534)
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-c", _AS_ANOTHER_USER, str(work), PYTHON, forker],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
        )  # fmt: skip
    finally:
        shutil.rmtree(work)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert out.startswith("the build reached its limit of 24 processes and threads"), out
    started = int(out.split("fork failed after ")[1].split()[0])
    assert 10 <= started < 24, out
