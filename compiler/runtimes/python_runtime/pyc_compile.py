"""A function run on the freshly built runtime, at install time: compile stdlib files.

Event: {"paths": [paths under /python]}. Result: {path: base64 of the .pyc}.
The .pyc files are made by the guest's own CPython (so their magic number and
bytecode match it) as unchecked-hash pycs: valid whatever the files' mtimes
after archiving. The host writes them into the stdlib folder it archives.
"""

import base64
import importlib.util
from importlib._bootstrap_external import _code_to_hash_pyc


def main(event):
    out = {}
    for path in event["paths"]:
        with open(path, "rb") as f:
            source = f.read()
        try:
            code = compile(source, path, "exec", dont_inherit=True)
        except SyntaxError:
            continue  # test data and the like: left as source
        data = _code_to_hash_pyc(code, importlib.util.source_hash(source), False)
        out[path] = base64.b64encode(data).decode()
    return out
