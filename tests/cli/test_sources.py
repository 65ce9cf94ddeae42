"""What `nimbus deploy` makes of a folder or a file (no server: a catalog as the API gives it)."""

from __future__ import annotations

import re

import pytest

from cli import sources
from cli.runtimes import Catalog, _from_api
from gateway.services.runtimes import RuntimeCatalog
from gateway.settings import Settings

# The catalog exactly as the server's `GET /api/v1/runtimes` gives it.
API_RUNTIMES = RuntimeCatalog(Settings()).list().model_dump(mode="json")["runtimes"]
CATALOG = Catalog(tuple(_from_api(item) for item in API_RUNTIMES))


def test_a_folder_with_package_json_is_javascript_and_skips_installed_modules(tmp_path):
    (tmp_path / "package.json").write_text('{"dependencies": {}}')
    (tmp_path / "handler.js").write_text("export function main(e) { return e }")
    (tmp_path / "node_modules" / "dep").mkdir(parents=True)
    (tmp_path / "node_modules" / "dep" / "index.js").write_text("x")
    (tmp_path / ".env").write_text("SECRET=1")
    source = sources.from_path(CATALOG, tmp_path, None, None)
    assert source.runtime.name == "javascript"
    assert sorted(source.body["files"]) == ["handler.js", "package.json"]
    assert "handler" not in source.body  # handler.js is the default's file


def test_a_wrangler_project_without_package_json_is_javascript(tmp_path):
    """A Workers project of wrangler.toml and src/index.ts (no package.json) was refused:
    "has no source file of any runtime", though its wrangler.toml names the entry."""
    (tmp_path / "src").mkdir()
    (tmp_path / "wrangler.toml").write_text('name = "edge"\nmain = "src/index.ts"\n')
    (tmp_path / "src" / "index.ts").write_text("export default { fetch() {} }")
    source = sources.from_path(CATALOG, tmp_path, None, None)
    assert source.runtime.name == "javascript" and source.name == "edge"
    assert source.body["handler"] == "src/index.main"
    assert sorted(source.body["files"]) == ["src/index.ts", "wrangler.toml"]


def test_requirements_txt_becomes_the_requirements(tmp_path):
    (tmp_path / "handler.py").write_text("def main(e): return e")
    (tmp_path / "requirements.txt").write_text("# pinned\nattrs==23.2.0\n\nsix  # why\n")
    body = sources.from_path(CATALOG, tmp_path, None, None).body
    assert body["requirements"] == ["attrs==23.2.0", "six"]
    assert list(body["files"]) == ["handler.py"]


def test_an_even_split_of_languages_needs_runtime(tmp_path):
    (tmp_path / "a.py").write_text("x = 1")
    (tmp_path / "b.go").write_text("package main")
    with pytest.raises(sources.SourceError, match="pass --runtime"):
        sources.from_path(CATALOG, tmp_path, None, None)
    assert sources.from_path(CATALOG, tmp_path, "go", None).runtime.name == "go"


def test_single_files_and_names(tmp_path):
    module = tmp_path / "My_Echo.wasm"
    module.write_bytes(b"\0asm\x01\0\0\0")
    wasm = sources.from_path(CATALOG, module, None, None)
    assert wasm.artifact == module and wasm.body == {}
    assert sources.default_name(module) == "my-echo"
    go = tmp_path / "main.go"
    go.write_text("package main")
    assert sources.from_path(CATALOG, go, None, None).body == {"files": {"main.go": "package main"}}
    with pytest.raises(sources.SourceError, match="takes a binary"):
        sources.from_code(CATALOG, "wasm", "x", None)
    assert sources.from_code(CATALOG, "python3.11", "x", "main.handler").body == {
        "code": "x", "handler": "main.handler"
    }  # fmt: skip


@pytest.mark.parametrize("name", ["transform.c", "transform.go", "transform.rs"])
def test_a_single_compiled_file_keeps_its_name(tmp_path, name):
    # It was sent as `code`, stored as handler.c: build errors and stack traces of
    # transform.c named handler.c:24.
    path = tmp_path / name
    path.write_text("// a function\n")
    assert sources.from_path(CATALOG, path, None, None).body == {"files": {name: "// a function\n"}}
    with_handler = sources.from_path(CATALOG, path, None, "transform.run").body
    assert with_handler == {"files": {name: "// a function\n"}, "handler": "transform.run"}


def test_a_folders_function_json_gives_settings_and_is_not_uploaded(tmp_path):
    (tmp_path / "main.py").write_text("def go(e): return e")
    (tmp_path / "function.json").write_text(
        '{"name": "my-fn", "runtime": "python", "handler": "main.go", "memory_mb": 64,'
        ' "env_vars": {"MODE": "x"}}'
    )
    source = sources.from_path(CATALOG, tmp_path, None, None)
    assert (source.name, source.runtime.name) == ("my-fn", "python")
    assert source.body == {
        "files": {"main.py": "def go(e): return e"}, "handler": "main.go", "memory_mb": 64,
        "env_vars": {"MODE": "x"},
    }  # fmt: skip
    assert sources.from_path(CATALOG, tmp_path, None, "main.other").body["handler"] == "main.other"


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("{", "function.json is not JSON"),
        ("[]", "must be a JSON object of settings"),
        ('{"memory": 64}', "unknown setting 'memory' (known: name, runtime"),
        ('{"name": 3}', "name must be a string"),
    ],
)
def test_a_bad_function_json_says_what_is_wrong(tmp_path, manifest, message):
    (tmp_path / "handler.py").write_text("def main(e): return e")
    (tmp_path / "function.json").write_text(manifest)
    with pytest.raises(sources.SourceError, match=re.escape(message)):
        sources.from_path(CATALOG, tmp_path, None, None)


@pytest.mark.parametrize(
    ("name", "text", "handler"),
    [
        ("lambda_function.py", "def lambda_handler(event, context):\n    return 1\n",
         "lambda_function.lambda_handler"),
        ("index.mjs", "export const handler = async (event) => 1;\n", "index.handler"),
        ("index.js", "exports.handler = async (event) => 1;\n", "index.handler"),
        ("app.py", "def main(event):\n    return 1\n\ndef handler(e):\n    return 2\n", "app.main"),
        ("app.py", "def other(event):\n    return 1\n", "app.main"),  # the build will say so
    ],
)  # fmt: skip
def test_a_lone_file_written_for_lambda_keeps_its_handler(tmp_path, name, text, handler):
    (tmp_path / name).write_text(text)
    assert sources.from_path(CATALOG, tmp_path, None, None).body["handler"] == handler
    assert sources.from_path(CATALOG, tmp_path / name, None, None).body["handler"] == handler


def test_a_folder_without_any_source_file_says_so(tmp_path):
    (tmp_path / "README.md").write_text("# notes")
    with pytest.raises(sources.SourceError, match=r"has no source file of any runtime \(.go, "):
        sources.from_path(CATALOG, tmp_path, None, None)


def test_a_binary_without_an_extension_is_known_by_its_magic(tmp_path):
    # `gcc -static -o hello` (examples/native/build.sh) then `nimbus deploy hello`
    # said "cannot tell the runtime of hello: pass --runtime"
    program = tmp_path / "hello"
    program.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(57))
    native = sources.from_path(CATALOG, program, None, None)
    assert (native.runtime.name, native.artifact) == ("native", program)
    module = tmp_path / "echo"
    module.write_bytes(b"\0asm\x01\0\0\0")
    assert sources.from_path(CATALOG, module, None, None).runtime.name == "wasm"
    text = tmp_path / "notes"
    text.write_text("hello")
    with pytest.raises(sources.SourceError, match="pass --runtime"):
        sources.from_path(CATALOG, text, None, None)
