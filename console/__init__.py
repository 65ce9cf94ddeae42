"""The web console: a browser app over the public REST API (sources in `console/src/`).

`scripts/console.sh` bundles it with esbuild into `static/` at install time; the gateway
serves that folder at `/` (gateway/api/resources/console.py).
"""

from pathlib import Path

BUILT = Path(__file__).parent / "static"
