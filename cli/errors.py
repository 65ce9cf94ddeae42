"""What a failed API call raises (apart from the client, so commands that never call the
API, such as `nimbus serve`, do not import an HTTP client)."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
