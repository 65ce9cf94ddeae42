"""What a failed API call raises (apart from the client, so commands that never call the
API, such as `nimbus serve`, do not import an HTTP client)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The API answered with an error (or could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        # status 0: no answer at all (unreachable, a bad URL); no HTTP status to show
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict:
        """The API's error object, as `--output json` prints it."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BuildFailed(Exception):
    """A deploy's build ended in `failed`: the record and the build's error and log."""

    def __init__(self, function: dict, build: dict) -> None:
        super().__init__(build.get("error") or "the build failed")
        self.function = function
        self.build = build
