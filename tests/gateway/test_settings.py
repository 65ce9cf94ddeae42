"""Every setting a server reads is one an operator can find in the README."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README.read_text()))
    names = [name.upper() for name in Settings.model_fields]
    missing = [name for name in names if name not in documented]
    assert missing == [], f"settings the README does not mention: {missing}"
