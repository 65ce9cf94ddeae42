"""A multipart create (`artifact` + `metadata` parts): what it says when a part is wrong."""

from __future__ import annotations

BOUNDARY = "nimbus-test-boundary"


def _form(*parts: tuple[str, bytes]) -> bytes:
    body = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + data
        + b"\r\n"
        for name, data in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode()


def _post(client, body: bytes):
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    return client.simulate_post("/api/v1/functions", body=body, headers=headers)


def test_a_missing_metadata_part_is_called_missing(client):
    # It said "the metadata part must be a JSON object" (a wrong shape) while its
    # details said "required": the message now says the part is missing.
    resp = _post(client, _form(("artifact", b"\0asm\1\0\0\0")))
    assert resp.status_code == 422, resp.text
    error = resp.json["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("the metadata part is missing"), error
    assert error["details"] == [{"field": "metadata", "message": "required"}]


def test_a_metadata_part_that_is_no_object_says_so(client):
    for data in (b"[1, 2]", b"null", b'"hello"'):
        resp = _post(client, _form(("artifact", b"\0asm\1\0\0\0"), ("metadata", data)))
        assert resp.status_code == 422, resp.text
        error = resp.json["error"]
        assert error["message"] == "the metadata part must be a JSON object", (data, error)
        assert error["details"] == [{"field": "metadata", "message": "must be a JSON object"}]
