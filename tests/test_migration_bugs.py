"""A bug in the migration runner is a bug, not a failed file: Synapse answering in a shape the
product does not expect (a fault injected at the HTTP boundary by a loopback proxy in front of the
emulator) must propagate out of ``run_migration`` (the CLI's exit 3), never be written into the
report as a ``failed`` row that reads like an ordinary, retryable problem."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from test_migration_support import MIB, World, product_api_for, world

from synapse_declare.emulator import Emulator
from synapse_declare.errors import SynapseDeclareError

Mangle = Callable[[str, str, Any], Any]  # (method, path, JSON response) -> JSON sent instead


class _MangleProxy:
    """Forwards every request to the emulator; the JSON of each answer goes through ``mangle``."""

    def __init__(self, upstream: str, mangle: Mangle) -> None:
        session = requests.Session()
        session.trust_env = False
        self.session = session

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                answer = session.request(
                    self.command, upstream + self.path, data=body, headers=headers, timeout=30
                )
                content = answer.content
                if content and "json" in answer.headers.get("Content-Type", ""):
                    document = mangle(self.command, self.path.split("?")[0], answer.json())
                    content = json.dumps(document).encode()
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 (http.server names)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> _MangleProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.session.close()


def _copy_start_without_upload_id(method: str, path: str, document: Any) -> Any:
    if method == "POST" and path == "/file/v1/file/multipart" and "uploadId" in document:
        return {k: v for k, v in document.items() if k != "uploadId"}
    return document


def _part_urls_without_url(method: str, path: str, document: Any) -> Any:
    if method == "POST" and path.endswith("/presigned/url/batch"):
        return {
            "partPresignedUrls": [
                {k: v for k, v in u.items() if k != "uploadPresignedUrl"}
                for u in document.get("partPresignedUrls", [])
            ]
        }
    return document


@pytest.fixture
def w(emulator: Emulator, tmp_path: Path) -> Iterator[World]:
    with world(emulator, tmp_path) as value:
        yield value


@pytest.mark.parametrize(
    "mangle",
    [_copy_start_without_upload_id, _part_urls_without_url],
    ids=["copy-start-without-uploadId", "part-url-without-url"],
)
def test_an_unexpected_response_shape_propagates_not_a_failed_row(
    w: World, emulator: Emulator, mangle: Mangle
) -> None:
    for n in range(2):
        w.put_file(bytes([n]) * (6 * MIB), f"f{n}.bin")
    index = w.index()
    with _MangleProxy(emulator.base_url, mangle) as proxy:
        api = product_api_for(proxy.base_url, emulator.users["alice"])
        saved, w.api = w.api, api
        try:
            # A programming error (the KeyError of a missing field), not a product error.
            with pytest.raises(KeyError) as raised:
                w.migrate(index, parallel=1)
        finally:
            w.api = saved
            api.t.close()

    assert not isinstance(raised.value, SynapseDeclareError)
    # The report is still written, and no row claims the file failed for an ordinary reason.
    report = json.loads((w.reports / "report.json").read_text())
    statuses = {row["status"] for row in report["rows"]}
    assert statuses == {"not_attempted"}
    assert report["ok"] is False
    # Nothing was repointed: every file still has its source handle.
    for item in index.items:
        assert w.version_handle(item.entity_id, item.version)["id"] == item.file_handle_id
