"""A scripted stand-in for the ``matchlock`` binary, used by the unit tests.

``fake_matchlock.py rpc`` speaks line-delimited JSON-RPC 2.0 on stdin/stdout
like ``matchlock rpc``; other argv (``rm``, ``volume …``) behave like the CLI
calls the SDK makes. What an ``exec`` does is chosen by its command, e.g.
``echo hi``, ``binary``, ``sleep 5``, ``fail``, ``die``, ``hook network_hook_1
after``. Everything received and sent is appended to $FAKE_MATCHLOCK_RECORD
(JSON lines), so tests can check what the SDK put on the wire.

Environment:
  FAKE_MATCHLOCK_RECORD       file to append the record to
  FAKE_MATCHLOCK_RESULTS      JSON file {method: result} overriding answers
  FAKE_MATCHLOCK_CLOSE        normal | hang (never answer close, ignore EOF)
  FAKE_MATCHLOCK_READY_DELAY  seconds before *.ready (default 0.2)
  FAKE_MATCHLOCK_LOG_END      1: log_stream ends by itself after its chunks
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import threading
import time

RECORD = os.environ.get("FAKE_MATCHLOCK_RECORD", "")
_record_lock = threading.Lock()
_out_lock = threading.Lock()


def record(kind: str, **fields) -> None:
    if not RECORD:
        return
    entry = {"kind": kind, "t": time.monotonic(), "pid": os.getpid(), **fields}
    with _record_lock:
        with open(RECORD, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def send(msg: dict) -> None:
    line = json.dumps(msg) + "\n"
    with _out_lock:
        record("out", msg=msg)
        sys.stdout.write(line)
        sys.stdout.flush()


def send_raw(text: str) -> None:
    with _out_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def notify(method: str, params: dict) -> None:
    send({"jsonrpc": "2.0", "method": method, "params": params})


def answer(req_id: int, result: dict) -> None:
    override = OVERRIDES.get(CURRENT_METHOD.get(req_id, ""))
    send({"jsonrpc": "2.0", "id": req_id, "result": override if override is not None else result})


def fail(req_id: int, code: int, message: str) -> None:
    send({"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}})


OVERRIDES: dict = {}
if os.environ.get("FAKE_MATCHLOCK_RESULTS"):
    with open(os.environ["FAKE_MATCHLOCK_RESULTS"], encoding="utf-8") as _f:
        OVERRIDES = json.load(_f)
CURRENT_METHOD: dict[int, str] = {}


class Session:
    """One exec_pipe / exec_tty: its stdin queue and whether ready was sent."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.chunks: list[bytes] = []
        self.eof = False
        self.ready_sent = False


class Server:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, int]] = {}
        self.allowed: list[str] = []
        self.callback_socket = ""
        self.sessions: dict[int, Session] = {}
        self.cancelled: dict[int, threading.Event] = {}
        self.lock = threading.Lock()
        self.ready_delay = float(os.environ.get("FAKE_MATCHLOCK_READY_DELAY", "0.2"))

    # ── main loop ──
    def run(self) -> None:
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                record("bad_line", line=line)
                send({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
                continue
            record("in", msg=msg)
            self.handle(msg)
        # stdin closed
        record("stdin_eof")
        if os.environ.get("FAKE_MATCHLOCK_CLOSE") == "hang":
            while True:
                time.sleep(1)
        sys.exit(0)

    def handle(self, msg: dict) -> None:
        method = msg.get("method")
        req_id = msg.get("id")
        params = msg.get("params") or {}
        CURRENT_METHOD[req_id] = method
        if method in ("exec_pipe.stdin", "exec_tty.stdin", "exec_pipe.stdin_eof", "exec_tty.stdin_eof"):
            self.stdin(method, params)
            return
        if method == "exec_tty.resize":
            return
        if method == "cancel":
            target = params.get("id")
            with self.lock:
                ev = self.cancelled.get(target)
            if ev is not None:
                ev.set()
            answer(req_id, {"cancelled": ev is not None})
            return
        if method == "close":
            if os.environ.get("FAKE_MATCHLOCK_CLOSE") == "hang":
                return
            answer(req_id, {})
            return
        handler = getattr(self, "m_" + str(method).replace(".", "_"), None)
        if handler is None:
            fail(req_id, -32601, f"method not found: {method}")
            return
        ev = threading.Event()
        with self.lock:
            self.cancelled[req_id] = ev
            if method in ("exec_pipe", "exec_tty"):
                self.sessions[req_id] = Session()
        threading.Thread(target=self.run_handler, args=(handler, req_id, params, ev), daemon=True).start()

    def run_handler(self, handler, req_id, params, ev) -> None:
        try:
            handler(req_id, params, ev)
        except Exception as e:  # noqa: BLE001
            fail(req_id, -32603, f"fake server error: {e!r}")
        finally:
            with self.lock:
                self.cancelled.pop(req_id, None)

    def stdin(self, method: str, params: dict) -> None:
        target = params.get("id")
        with self.lock:
            session = self.sessions.get(target)
        if session is None:
            record("violation", reason=f"{method} for unknown request {target}")
            return
        with session.cond:
            if not session.ready_sent:
                record("violation", reason=f"{method} before ready for {target}")
            if method.endswith("stdin_eof"):
                session.eof = True
            else:
                session.chunks.append(base64.b64decode(params["data"], validate=True))
            session.cond.notify_all()

    # ── methods ──
    def m_create(self, req_id, params, ev) -> None:
        net = params.get("network") or {}
        self.callback_socket = (net.get("interception") or {}).get("callback_socket", "")
        answer(req_id, {"id": "vm-0123abcd"})

    def output_for(self, command) -> tuple[int, bytes, bytes, str]:
        """(exit code, stdout, stderr, special) for a command."""
        if isinstance(command, list):
            command = " ".join(command)
        word, _, rest = command.partition(" ")
        if word == "echo":
            return 0, rest.encode() + b"\n", b"", ""
        if word == "binary":
            return 0, bytes(range(256)), b"", ""
        if word == "stderr":
            return 0, b"", rest.encode() + b"\n", ""
        if word == "exit":
            return int(rest), b"", b"", ""
        if word == "utf8split":
            return 0, "é€ok\n".encode(), b"", "split"
        return 0, b"", b"", word

    def wait_cancellable(self, seconds: float, ev: threading.Event) -> bool:
        """True when cancelled before ``seconds`` passed."""
        return ev.wait(seconds)

    def special(self, word: str, req_id, params, ev) -> bool:
        """Handle commands that do not just print; True when answered."""
        command = params.get("command")
        if isinstance(command, list):
            command = " ".join(command)
        if word == "sleep":
            if self.wait_cancellable(float(command.split()[1]), ev):
                fail(req_id, -32003, "cancelled")
            else:
                answer(req_id, {"exit_code": 0, "stdout": "", "stderr": "", "duration_ms": 1})
            return True
        if word == "fail":
            fail(req_id, -32001, "exec failed: boom")
            return True
        if word == "die":
            record("die")
            os._exit(3)
        return False

    def m_exec(self, req_id, params, ev) -> None:
        code, out, err, word = self.output_for(params["command"])
        if word and self.special(word, req_id, params, ev):
            return
        if word == "hook":
            out = self.call_hook(params["command"])
        if word == "noise":
            self.noise(req_id)
        if word == "event":
            _, path, op = params["command"].split()
            notify("event", {"type": "file", "timestamp": int(time.time() * 1000),
                             "file": {"op": op.upper(), "path": path, "size": 3, "mode": 420, "uid": 0, "gid": 0}})
        answer(req_id, {"exit_code": code, "stdout": b64(out), "stderr": b64(err), "duration_ms": 7})

    def noise(self, req_id) -> None:
        send_raw("this is not json")
        notify("exec_stream.stdout", {"id": req_id + 1000, "data": b64(b"not yours")})
        notify("something.unknown", {"id": req_id})
        notify("event", {"type": "network", "timestamp": 1, "network": {"host": "x", "blocked": True}})
        send({"jsonrpc": "2.0", "id": req_id + 1000, "result": {}})

    def m_exec_stream(self, req_id, params, ev) -> None:
        code, out, err, word = self.output_for(params["command"])
        if word and self.special(word, req_id, params, ev):
            return
        if word == "noise":
            self.noise(req_id)
            out = b"fine\n"
        if word == "split":
            for piece in (out[:1], out[1:3], out[3:]):
                notify("exec_stream.stdout", {"id": req_id, "data": b64(piece)})
        else:
            for i in range(0, len(out), 100):
                notify("exec_stream.stdout", {"id": req_id, "data": b64(out[i:i + 100])})
        if err:
            notify("exec_stream.stderr", {"id": req_id, "data": b64(err)})
        answer(req_id, {"exit_code": code, "duration_ms": 9})

    def interactive(self, method, req_id, params, ev) -> None:
        session = self.sessions[req_id]
        if self.wait_cancellable(self.ready_delay, ev):
            fail(req_id, -32003, "cancelled")
            return
        with session.cond:
            session.ready_sent = True
            record("ready_sent", id=req_id)
            notify(f"{method}.ready", {"id": req_id})
        out_name = f"{method}.stdout"
        while True:
            with session.cond:
                while not session.chunks and not session.eof and not ev.is_set():
                    session.cond.wait(0.05)
                chunks, session.chunks = session.chunks, []
                eof = session.eof
            for chunk in chunks:
                notify(out_name, {"id": req_id, "data": b64(chunk)})
            if ev.is_set():
                fail(req_id, -32003, "cancelled")
                return
            if eof:
                break
        if method == "exec_pipe":
            notify("exec_pipe.stderr", {"id": req_id, "data": b64(b"done\n")})
        answer(req_id, {"exit_code": 0, "duration_ms": 11})

    def m_exec_pipe(self, req_id, params, ev) -> None:
        self.interactive("exec_pipe", req_id, params, ev)

    def m_exec_tty(self, req_id, params, ev) -> None:
        self.interactive("exec_tty", req_id, params, ev)

    def m_write_file(self, req_id, params, ev) -> None:
        data = base64.b64decode(params["content"], validate=True)
        self.files[params["path"]] = (data, params.get("mode") or 0o644)
        answer(req_id, {})

    def m_read_file(self, req_id, params, ev) -> None:
        entry = self.files.get(params["path"])
        if entry is None:
            fail(req_id, -32002, f"read {params['path']}: no such file")
            return
        answer(req_id, {"content": b64(entry[0])})

    def m_list_files(self, req_id, params, ev) -> None:
        base = params["path"].rstrip("/") + "/"
        files, dirs = [], set()
        for path, (data, mode) in sorted(self.files.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base):]
            if "/" in rest:
                dirs.add(rest.split("/")[0])
            else:
                files.append({"name": rest, "size": len(data), "mode": mode,
                              "mod_time": "2024-01-02T03:04:05Z", "is_dir": False})
        files += [{"name": d, "size": 0, "mode": 0o755 | 0o40000, "is_dir": True} for d in sorted(dirs)]
        answer(req_id, {"files": files})

    def m_log(self, req_id, params, ev) -> None:
        answer(req_id, {"content": b64("boot ok\nentrypoint: ✓\n".encode())})

    def m_log_stream(self, req_id, params, ev) -> None:
        for piece in (b"line one\n", b"line two\n"):
            notify("log_stream.data", {"id": req_id, "data": b64(piece)})
        if os.environ.get("FAKE_MATCHLOCK_LOG_END") == "1":
            answer(req_id, {})
            return
        if ev.wait(10):
            fail(req_id, -32003, "cancelled")
        else:
            answer(req_id, {})

    def m_allow_list_add(self, req_id, params, ev) -> None:
        added = [h for h in params["hosts"] if h not in self.allowed]
        self.allowed += added
        answer(req_id, {"added": added, "allowed_hosts": list(self.allowed)})

    def m_allow_list_delete(self, req_id, params, ev) -> None:
        removed = [h for h in params["hosts"] if h in self.allowed]
        self.allowed = [h for h in self.allowed if h not in removed]
        answer(req_id, {"removed": removed, "allowed_hosts": list(self.allowed)})

    def m_port_forward(self, req_id, params, ev) -> None:
        addresses = params.get("addresses") or ["127.0.0.1"]
        bindings = [{"address": a, "local_port": f["local_port"], "remote_port": f["remote_port"]}
                    for a in addresses for f in params["forwards"]]
        if any(f["local_port"] == 1 for f in params["forwards"]):
            fail(req_id, -32000, "bind: address already in use")
            return
        answer(req_id, {"bindings": bindings})

    def call_hook(self, command: str) -> bytes:
        """Play the host: connect to the SDK's callback socket, ask, return the reply."""
        parts = command.split()
        callback_id, phase = parts[1], parts[2]
        request = {
            "callback_id": callback_id,
            "phase": phase,
            "host": "api.example.com",
            "method": "GET",
            "path": "/v1/items",
            "query": {"q": "1"},
            "request_headers": {"Accept": ["*/*"], "X-Trace": ["a", "b"]},
        }
        if phase == "after":
            request.update(status_code=200, response_headers={"Content-Type": ["text/event-stream"]},
                           is_sse=True)
        if len(parts) > 3 and parts[3] == "raw":
            payload = b"{not json\n"
        else:
            payload = (json.dumps(request) + "\n").encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.callback_socket)
            s.sendall(payload)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply = json.loads(buf)
        record("hook_reply", request=request, reply=reply)
        return buf


def cli(argv: list[str]) -> int:
    record("cli", argv=argv)
    if argv[:1] == ["rm"]:
        if argv[1] == "vm-fail":
            print(f"Error: no such VM {argv[1]}", file=sys.stderr)
            return 1
        print(f"removed {argv[1]}")
        return 0
    if argv[:2] == ["volume", "create"]:
        name, size = argv[2], argv[argv.index("--size") + 1]
        print(json.dumps({"name": name, "size": f"{float(size):.1f} MB", "path": f"/var/vol/{name}.ext4"}))
        return 0
    if argv[:2] == ["volume", "ls"]:
        print(json.dumps([{"name": "cache", "size": "16.0 MB", "path": "/var/vol/cache.ext4"}]))
        return 0
    if argv[:2] == ["volume", "rm"]:
        if argv[2] == "missing":
            print("Error: volume missing not found", file=sys.stderr)
            return 1
        return 0
    print(f"fake matchlock: unsupported {argv}", file=sys.stderr)
    return 2


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["rpc"]:
        print("fake matchlock rpc starting", file=sys.stderr, flush=True)
        Server().run()
        return 0
    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
