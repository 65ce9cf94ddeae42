from __future__ import annotations

from pathlib import Path

import pytest

from tests.compiler.wasi import Sandboxed


@pytest.fixture
def sandboxed(tmp_path: Path):
    """Run a built module in the real sandbox: `sandboxed(artifact, event, context)`."""
    runner = Sandboxed(tmp_path)
    yield runner
    runner.close()
