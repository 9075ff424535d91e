"""The three ways to run a command: streamed, piped, and on a PTY.

    python3 examples/python/exec_modes/main.py

With a real terminal on stdin/stdout the last part opens an interactive shell
(type `exit`); otherwise it drives the PTY with a script.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import IMAGE, check  # noqa: E402

from matchlock import Client, Sandbox  # noqa: E402


def stream(client: Client) -> None:
    print("== exec_stream ==")
    lines: list[bytes] = []
    r = client.exec_stream(
        "for i in 1 2 3; do echo tick $i; sleep 0.2; done; echo warn >&2",
        stdout=lines.append,  # called for each chunk as it arrives
        stderr=sys.stderr,
        timeout=60,
    )
    check(r.exit_code == 0 and b"".join(lines) == b"tick 1\ntick 2\ntick 3\n", "streamed output")


def pipe(client: Client) -> None:
    print("== exec_pipe ==")
    data = bytes(range(256)) * 32
    out, err = io.BytesIO(), io.StringIO()
    r = client.exec_pipe("cat; echo piped-stderr >&2", stdin=io.BytesIO(data), stdout=out, stderr=err, timeout=60)
    check(r.exit_code == 0 and out.getvalue() == data, f"{len(data)} binary bytes through cat")
    check(err.getvalue() == "piped-stderr\n", "stderr kept apart")


def interactive(client: Client) -> None:
    print("== exec_interactive ==")
    if sys.stdin.isatty() and sys.stdout.isatty():
        import termios
        import tty

        fd = sys.stdin.fileno()
        size = os.get_terminal_size(fd)
        saved = termios.tcgetattr(fd)
        tty.setraw(fd)
        try:
            reader = type("R", (), {"read": lambda self, n: os.read(fd, n)})()
            r = client.exec_interactive("sh", stdin=reader, stdout=sys.stdout.buffer, rows=size.lines, cols=size.columns)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        print(f"\nshell exited with {r.exit_code}")
        return
    out = io.BytesIO()
    r = client.exec_interactive(
        "sh",
        stdin=b"stty size; exit 7\n",
        stdout=out,
        rows=24,
        cols=80,
        resize=[(40, 120)],
        timeout=60,
    )
    print(out.getvalue().decode(errors="replace"))
    check(r.exit_code == 7, "PTY session ended with the shell's status")


def main() -> None:
    with Client() as client:
        client.launch(Sandbox(IMAGE).with_no_network())
        try:
            stream(client)
            pipe(client)
            interactive(client)
        finally:
            client.close()
            client.remove()


if __name__ == "__main__":
    main()
