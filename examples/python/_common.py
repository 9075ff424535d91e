"""Shared by the examples: finding the SDK, and a loopback upstream to talk to.

The guest reaches a host loopback address only through a name mapped with
``add_host`` (the proxy dials the host's loopback for it), so every example
maps ``upstream.example`` to the upstream's address and allows that name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qsl, urlsplit

try:
    import matchlock  # noqa: F401  (installed with pip)
except ImportError:  # running from a checkout: use sdk/python next door
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sdk" / "python"))

from matchlock import Sandbox  # noqa: E402

IMAGE = os.environ.get("MATCHLOCK_EXAMPLE_IMAGE", "busybox")
GUEST_NAME = "upstream.example"


class _Handler(BaseHTTPRequestHandler):
    """GET /sse: three server-sent events; anything else: the request as JSON."""

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/sse":
            body = b"".join(f"data: hello world {i}\n\n".encode() for i in range(3))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
        else:
            body = json.dumps(
                {
                    "method": self.command,
                    "path": url.path,
                    "query": dict(parse_qsl(url.query)),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                },
                sort_keys=True,
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", "example")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def upstream() -> Iterator[str]:
    """The upstream URL: $MATCHLOCK_EXAMPLE_UPSTREAM, or a server started here."""
    given = os.environ.get("MATCHLOCK_EXAMPLE_UPSTREAM")
    if given:
        yield given.rstrip("/")
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def reach(sandbox: Sandbox, url: str) -> tuple[Sandbox, str, str]:
    """Let the guest reach ``url``; returns (sandbox, guest URL, secret host).

    An IP literal is mapped to ``upstream.example``. The secret host names the
    scheme for plain http, which is the only way cleartext may carry a secret.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        sandbox.add_host(GUEST_NAME, host)
        host = GUEST_NAME
    except ValueError:
        pass
    sandbox.allow_host(host)
    port = f":{parts.port}" if parts.port else ""
    secret_host = f"http://{host}" if parts.scheme == "http" else host
    return sandbox, f"{parts.scheme}://{host}{port}", secret_host


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")
    print(f"ok: {message}")
