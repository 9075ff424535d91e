"""Port forwarding: a web server in the guest, fetched from the host.

    python3 examples/python/port_forward/main.py
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import IMAGE, check  # noqa: E402

from matchlock import Client, Sandbox  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    with Client() as client:
        client.launch(Sandbox(IMAGE))
        try:
            client.write_file("/www/index.html", "<h1>hello from the sandbox</h1>\n")
            r = client.exec("busybox httpd -p 8080 -h /www", timeout=60)  # daemonizes
            check(r.exit_code == 0, f"httpd started (stderr: {r.stderr.strip()})")

            local = free_port()
            bindings = client.port_forward(f"{local}:8080")
            print("forwarding:", ", ".join(f"{b.address}:{b.local_port} -> {b.remote_port}" for b in bindings))

            body = b""
            for _ in range(50):  # httpd may need a moment to listen
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=5) as resp:
                        body = resp.read()
                    break
                except OSError:
                    time.sleep(0.2)
            print(body.decode(errors="replace"))
            check(b"hello from the sandbox" in body, "page served from the guest")
        finally:
            client.close()
            client.remove()


if __name__ == "__main__":
    main()
