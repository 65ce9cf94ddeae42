"""The build jail's process and disk bounds through the API: a real server, real zig."""

from __future__ import annotations

import pytest

from compiler._cgroups import builds_parent
from tests.e2e.compiled import EXAMPLES, build_log, create, deployed, invoke, serving

pytestmark = pytest.mark.timeout(900)  # a fresh machine installs zig on the first build

HELLO = (EXAMPLES / "c" / "hello.c").read_text()
# 64 MB of initialised data: the compiler writes all of it into the object and the module.
HOARDER = (
    "char hoard[64 << 20] = {'1'};\n"
    "char *handler(const char *event_json, const char *context_json) {\n"
    "    return hoard + (event_json[0] == 0);\n"
    "}\n"
)


def test_a_build_writing_past_the_disk_bound_fails_saying_so(tmp_path_factory):
    with serving(tmp_path_factory, BUILD_MAX_DISK_MB="24") as api:
        fn = deployed(api, "c", "c-small", HELLO)  # ~10 MB at its peak: fits
        assert "build folder: 24 MB at most" in build_log(api, "c-small")
        assert invoke(api, "c-small", {"name": "Ada"}).json()["message"] == "Hello, Ada!"
        assert fn["status"] == "active"

        fn = create(api, "c", "c-hoarder", HOARDER)
        assert fn["status"] == "failed"
        expected = "the build used up its 24 MB of disk space (BUILD_MAX_DISK_MB)"
        assert fn["latest_build"]["error"] == expected
        assert expected in build_log(api, "c-hoarder")


@pytest.mark.skipif(builds_parent() is None, reason="no pids cgroup can be made here")
def test_a_build_past_the_process_bound_fails_saying_so(tmp_path_factory):
    # zig cc runs 5-7 processes and threads at its peak: 3 cannot build anything.
    with serving(tmp_path_factory, BUILD_MAX_PIDS="3") as api:
        fn = create(api, "c", "c-crowded", HELLO)
        assert fn["status"] == "failed"
        expected = "the build reached its limit of 3 processes and threads (BUILD_MAX_PIDS)"
        assert fn["latest_build"]["error"].startswith(expected)
        assert expected in build_log(api, "c-crowded")
