"""Every runtime: create → ready (warm caches), first and warm invoke, vs a process per call.

Each language deploys its `examples/<lang>/hello` (Python and JavaScript: a
one-line handler) through the real server with `?wait=true`; every
repetition changes a comment so the build cache cannot answer. The
references spawn one process per call on the same event: `python3` and
`node` running the same handler, and a native C program for the compiled
languages (the floor any WASM sandbox is compared with).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time

import httpx

from ..context import BenchContext
from ..model import Comparison, Result, Side, Target
from ..servers import REPO

EVENT = b'{"name": "Ada"}'
JSON = {"Content-Type": "application/json"}

PY_HANDLER = "def main(event, context):\n    return {'message': 'Hello, ' + event['name'] + '!'}\n"
JS_HANDLER = "exports.main = (event) => ({message: `Hello, ${event.name}!`});\n"
SOURCES = {
    "c": (REPO / "examples/c/hello.c").read_text,
    "rust": (REPO / "examples/rust/hello.rs").read_text,
    "go": (REPO / "examples/go/hello.go").read_text,
    "python": lambda: PY_HANDLER,
    "javascript": lambda: JS_HANDLER,
}
COMMENT = {"python": "# rep {}\n", "javascript": "// rep {}\n"}
DEPLOY_TARGETS = {"c": 1000.0, "rust": 2000.0, "go": 5000.0, "python": 1000.0, "javascript": 1000.0}

PY_PROCESS = (
    "import json,sys\n" + PY_HANDLER + "print(json.dumps(main(json.load(sys.stdin), {})))\n"
)
JS_PROCESS = (
    JS_HANDLER + "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>"
    "console.log(JSON.stringify(exports.main(JSON.parse(s)))));\n"
)
C_PROCESS = r"""#include <stdio.h>
int main(void){char b[4096];size_t n=fread(b,1,sizeof b-1,stdin);b[n]=0;
printf("{\"message\":\"Hello, Ada!\"}\n");return 0;}
"""


def _source(lang: str, rep: int) -> str:
    comment = COMMENT.get(lang, "// rep {}\n").format(rep)
    return comment + SOURCES[lang]()


def _deploy_ms(api: httpx.Client, lang: str, name: str, rep: int) -> float:
    started = time.perf_counter()
    resp = api.post("/api/v1/functions?wait=true",
                    json={"name": name, "runtime": lang, "code": _source(lang, rep)})  # fmt: skip
    elapsed = (time.perf_counter() - started) * 1000
    fn = resp.json()
    if resp.status_code != 201 or fn.get("status") != "active":
        raise RuntimeError(f"{lang} deploy failed: {resp.status_code} {resp.text[:800]}")
    return elapsed


def _invoke_ms(api: httpx.Client, name: str) -> float:
    started = time.perf_counter()
    resp = api.post(f"/api/v1/functions/{name}/invoke", content=EVENT, headers=JSON)
    if resp.status_code != 200:
        raise RuntimeError(f"invoke {name}: {resp.status_code} {resp.text[:500]}")
    return (time.perf_counter() - started) * 1000


def _process_ms(cmd: list[str], calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        subprocess.run(cmd, input=EVENT, capture_output=True, check=True, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _references(ctx: BenchContext, calls: int) -> dict[str, float]:
    work = ctx.scratch("runtimes")
    (work / "handler.py").write_text(PY_PROCESS)
    (work / "handler.js").write_text(JS_PROCESS)
    (work / "hello.c").write_text(C_PROCESS)
    subprocess.run(["gcc", "-O2", "-o", str(work / "hello"), str(work / "hello.c")], check=True)
    refs = {
        "python": _process_ms(["python3", str(work / "handler.py")], calls),
        "native": _process_ms([str(work / "hello")], calls),
    }
    if shutil.which("node"):
        refs["javascript"] = _process_ms(["node", str(work / "handler.js")], calls)
    return refs


def run(ctx: BenchContext) -> list[Result]:
    nimbus = ctx.nimbus()
    reps = 2 if ctx.quick else 4
    calls = 20 if ctx.quick else 100
    refs = _references(ctx, calls)
    results: list[Result] = []
    with nimbus.client(timeout=600) as api:
        for lang in SOURCES:
            _deploy_ms(api, lang, f"warm-{lang}", 0)  # fills toolchain and build caches
            deploys, firsts, warms = [], [], []
            for rep in range(1, reps + 1):
                name = f"bench-{lang}-{rep}"
                deploys.append(_deploy_ms(api, lang, name, rep))
                firsts.append(_invoke_ms(api, name))
                warms.append(statistics.median(_invoke_ms(api, name) for _ in range(calls)))
            ref = refs.get(lang, refs["native"])
            ref_label = {"python": "python3 per call", "javascript": "node per call"}.get(
                lang, "native C program per call"
            )
            results += [
                _result(lang, "deploy", "create → ready (warm caches)", deploys, ref, ref_label,
                        Target("<=", DEPLOY_TARGETS[lang], on="a")),
                _result(lang, "first", "first invoke after deploy (HTTP)", firsts, ref, ref_label),
                _result(lang, "warm", "warm invoke (HTTP, fresh instance)", warms, ref, ref_label),
            ]  # fmt: skip
    return results


def _result(lang, what, title, samples, ref, ref_label, target=None) -> Result:
    return Result(
        key=f"runtime-{lang}-{what}",
        title=f"{lang}: {title}",
        unit="ms",
        higher_is_better=False,
        a=Side(f"{lang} {what}", samples),
        b=Side(ref_label, [ref] * len(samples)),
        target=target,
    )


COMPARISON = Comparison(
    key="runtimes",
    title="Every runtime: deploy and invoke vs a process per call",
    run=run,
    uses_servers=True,
)
