"""The Matchlock client: drives one sandbox through ``matchlock rpc``.

    from matchlock import Client, Sandbox

    with Client() as client:
        client.launch(Sandbox("alpine:latest"))
        print(client.exec("echo hello").stdout)

One client owns one ``matchlock rpc`` child process, which owns one VM.
Requests are line-delimited JSON-RPC 2.0 on the child's stdin; a reader
thread dispatches responses by id and streaming notifications by the id in
their params. All public methods may be called from several threads.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import subprocess
import threading
import time
from collections import deque
from typing import IO, Any, Callable, Iterable

from ._hooks import NetworkHookServer, VFSHooks, compile_network_rules
from ._io import OutputSink, as_reader, chunk_to_bytes
from .builder import Sandbox
from .types import (
    AllowListResult,
    CommandError,
    Config,
    CreateOptions,
    ExecInteractiveResult,
    ExecPipeResult,
    ExecResult,
    ExecStreamResult,
    FileInfo,
    MatchlockError,
    PortForward,
    PortForwardBinding,
    RPCError,
    VolumeInfo,
)

STDIN_CHUNK_BYTES = 4096
"""Stdin is sent to exec_pipe / exec_tty in chunks of at most this size."""

DEFAULT_CLOSE_TIMEOUT_SECONDS = 2.0
"""What ``close()`` asks the server for when no timeout is given."""

# Notifications that belong to one request (their params carry its id).
_REQUEST_NOTIFICATIONS = frozenset(
    {
        "exec_stream.stdout",
        "exec_stream.stderr",
        "exec_pipe.ready",
        "exec_pipe.stdout",
        "exec_pipe.stderr",
        "exec_tty.ready",
        "exec_tty.stdout",
        "log_stream.data",
    }
)

# After a cancel, how long to wait for the cancelled request's own answer.
_CANCEL_GRACE_SECONDS = 5.0
_STDERR_TAIL_BYTES = 4096


class _Pending:
    __slots__ = ("event", "result", "error", "on_notification", "callback_error")

    def __init__(self, on_notification: Callable[[str, dict[str, Any]], None] | None) -> None:
        self.event = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.on_notification = on_notification
        self.callback_error: BaseException | None = None


def _b64decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise MatchlockError(f"invalid {what}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MatchlockError(f"invalid {what}: {e}") from e


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _result_object(result: Any, method: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise MatchlockError(f"invalid {method} response: expected an object")
    return result


def _int_field(result: dict[str, Any], key: str, method: str) -> int:
    value = result.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MatchlockError(f"invalid {method} response: {key} must be a number")
    return int(value)


class Client:
    """Client for one Matchlock sandbox, speaking JSON-RPC to ``matchlock rpc``."""

    def __init__(self, config: Config | None = None):
        if config is None:
            config = Config(binary_path=os.environ.get("MATCHLOCK_BIN", "matchlock"))
        self._config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._reader_thread: threading.Thread | None = None
        self._stderr_thread: threading.Thread | None = None
        self._stderr_tail: deque[bytes] = deque()
        self._stderr_size = 0

        self._id_lock = threading.Lock()
        self._request_id = 0
        self._write_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._exited = False

        self._vm_id: str | None = None
        self._last_vm_id: str | None = None
        self._closed = False

        self._hook_server: NetworkHookServer | None = None
        self._vfs_hooks = VFSHooks()

    # ── Lifecycle ────────────────────────────────────────────────────

    def __enter__(self) -> Client:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    @property
    def vm_id(self) -> str | None:
        """The id of the VM this client created (``None`` before ``create``)."""
        return self._vm_id

    def start(self) -> None:
        """Start ``matchlock rpc`` (a no-op when it already runs)."""
        if self._process is not None:
            return
        cmd = [self._config.binary_path, "rpc"]
        if self._config.use_sudo:
            cmd = ["sudo", *cmd]
        try:
            self._process = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as e:
            raise MatchlockError(f"cannot start {' '.join(cmd)}: {e}") from e
        self._reader_thread = threading.Thread(
            target=self._reader_loop, name="matchlock-rpc-reader", daemon=True
        )
        self._reader_thread.start()
        self._stderr_thread = threading.Thread(
            target=self._stderr_loop, name="matchlock-rpc-stderr", daemon=True
        )
        self._stderr_thread.start()

    def close(self, timeout: float = 0) -> None:
        """Shut the sandbox down.

        Sends ``close`` with ``timeout_seconds`` (``timeout``, or 2 s when 0),
        waits for its answer at most that long plus one second, closes the
        child's stdin, waits for it to exit, and kills it when it does not.
        """
        if self._closed:
            return
        self._closed = True
        self._last_vm_id = self._vm_id
        self._vfs_hooks = VFSHooks()
        self._stop_hook_server()

        proc = self._process
        if proc is None:
            return
        if proc.poll() is None:
            wait = timeout if timeout and timeout > 0 else DEFAULT_CLOSE_TIMEOUT_SECONDS
            try:
                self._send_request(
                    "close", {"timeout_seconds": wait}, timeout=wait + 1.0, cancel_on_timeout=False
                )
            except BaseException:  # noqa: BLE001 - best effort, the kill follows
                pass
            try:
                assert proc.stdin is not None
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                try:
                    proc.kill()
                    proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        if self._reader_thread is not None:
            self._reader_thread.join(timeout=2)
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def remove(self) -> None:
        """Remove the VM's state (``matchlock rm <id>``); call after ``close``."""
        vm_id = self._vm_id or self._last_vm_id
        if not vm_id:
            return
        self._run_cli(["rm", vm_id])

    # ── Volumes (CLI) ────────────────────────────────────────────────

    def volume_create(self, name: str, size_mb: int = 10240) -> VolumeInfo:
        """Create a named ext4 volume (``matchlock volume create``)."""
        name = name.strip()
        if not name:
            raise MatchlockError("volume name is required")
        if size_mb <= 0:
            raise MatchlockError("volume size must be > 0")
        out = self._run_cli(["volume", "create", name, "--size", str(size_mb), "--json"])
        try:
            payload = json.loads(out)
        except json.JSONDecodeError as e:
            raise MatchlockError(f"failed to parse volume create output: {e}") from e
        if not isinstance(payload, dict):
            raise MatchlockError("failed to parse volume create output: expected an object")
        path = str(payload.get("path") or "").strip()
        if not path:
            raise MatchlockError("failed to parse volume create output: missing path")
        return VolumeInfo(
            name=str(payload.get("name") or "").strip() or name,
            size=str(payload.get("size") or "").strip() or f"{float(size_mb):.1f} MB",
            path=path,
        )

    def volume_list(self) -> list[VolumeInfo]:
        """List named volumes (``matchlock volume ls --json``)."""
        out = self._run_cli(["volume", "ls", "--json"])
        try:
            payload = json.loads(out)
        except json.JSONDecodeError as e:
            raise MatchlockError(f"failed to parse volume list output: {e}") from e
        if payload is None:
            return []
        if not isinstance(payload, list):
            raise MatchlockError("failed to parse volume list output: expected an array")
        volumes = []
        for entry in payload:
            if not isinstance(entry, dict):
                raise MatchlockError(f"failed to parse volume list output line: {entry!r}")
            name = str(entry.get("name") or "").strip()
            path = str(entry.get("path") or "").strip()
            if not name or not path:
                raise MatchlockError(f"failed to parse volume list output line: {entry!r}")
            volumes.append(
                VolumeInfo(name=name, size=str(entry.get("size") or "").strip(), path=path)
            )
        return volumes

    def volume_remove(self, name: str) -> None:
        """Remove a named volume (``matchlock volume rm``)."""
        name = name.strip()
        if not name:
            raise MatchlockError("volume name is required")
        self._run_cli(["volume", "rm", name])

    def _run_cli(self, args: list[str]) -> str:
        cmd = [self._config.binary_path, *args]
        if self._config.use_sudo:
            cmd = ["sudo", *cmd]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as e:
            raise MatchlockError(f"cannot run {' '.join(cmd)}: {e}") from e
        if done.returncode != 0:
            raise CommandError(done.returncode, cmd, done.stdout, done.stderr)
        return done.stdout

    # ── Transport ────────────────────────────────────────────────────

    def _next_id(self) -> int:
        with self._id_lock:
            self._request_id += 1
            return self._request_id

    def _write(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode("utf-8")
        proc = self._process
        if proc is None or proc.stdin is None:
            raise MatchlockError("Matchlock process not running")
        with self._write_lock:
            try:
                proc.stdin.write(data)
                proc.stdin.flush()
            except (OSError, ValueError) as e:
                raise MatchlockError(f"Matchlock process not running: {e}") from e

    def _running(self) -> bool:
        return self._process is not None and not self._exited and self._process.poll() is None

    def _send_request(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        on_notification: Callable[[str, dict[str, Any]], None] | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        req_id: int | None = None,
        cancel_on_timeout: bool = True,
    ) -> Any:
        """Send one request and wait for its answer.

        On ``timeout`` the SDK sends ``cancel`` for the request and raises
        :class:`TimeoutError`. When ``cancel`` (an event) is set, or the
        waiting thread is interrupted, ``cancel`` is sent too; the request's
        own answer (normally the -32003 error) is then awaited briefly.
        """
        if not self._running():
            raise MatchlockError("Matchlock process not running")
        if req_id is None:
            req_id = self._next_id()
        pending = _Pending(on_notification)
        with self._pending_lock:
            self._pending[req_id] = pending
        try:
            request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": req_id}
            if params:
                request["params"] = params
            self._write(request)
            try:
                finished = self._wait(pending, timeout, cancel)
            except BaseException:
                self._send_cancel(req_id)
                raise
            if finished == "timeout":
                if cancel_on_timeout:
                    self._send_cancel(req_id)
                raise TimeoutError(f"request {method} (id={req_id}) timed out after {timeout}s")
            if finished == "cancelled":
                self._send_cancel(req_id)
                if not pending.event.wait(_CANCEL_GRACE_SECONDS):
                    raise RPCError(RPCError.CANCELLED, f"request {method} was cancelled")
            if pending.error is not None:
                raise pending.error
            if pending.callback_error is not None:
                raise pending.callback_error
            return pending.result
        finally:
            with self._pending_lock:
                self._pending.pop(req_id, None)

    @staticmethod
    def _wait(pending: _Pending, timeout: float | None, cancel: threading.Event | None) -> str:
        if cancel is None:
            return "done" if pending.event.wait(timeout) else "timeout"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 0.05
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                step = min(step, left)
            if pending.event.wait(step):
                return "done"
            if cancel.is_set():
                return "cancelled"

    def _send_cancel(self, target_id: int) -> None:
        self._send_fire_and_forget("cancel", {"id": target_id})

    def _send_fire_and_forget(self, method: str, params: dict[str, Any]) -> None:
        """Send a request whose answer nobody waits for (stdin, resize, cancel)."""
        try:
            self._write({"jsonrpc": "2.0", "method": method, "params": params, "id": self._next_id()})
        except MatchlockError:
            pass

    def _reader_loop(self) -> None:
        proc = self._process
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        try:
            while True:
                line = stdout.readline()
                if not line:
                    break
                self._dispatch(line)
        except (OSError, ValueError):
            pass
        finally:
            self._exited = True
            message = "Matchlock process closed unexpectedly"
            # Give the stderr reader a moment so the reason can be quoted.
            if self._stderr_thread is not None:
                self._stderr_thread.join(timeout=0.5)
            tail = self.stderr_tail().strip()
            if tail:
                message += f": {tail.splitlines()[-1]}"
            with self._pending_lock:
                pendings = list(self._pending.values())
                self._pending.clear()
            for p in pendings:
                p.error = MatchlockError(message)
                p.event.set()
            self._stop_hook_server()

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(msg, dict):
            return
        msg_id = msg.get("id")
        if msg_id is None:
            if isinstance(msg.get("method"), str):
                self._handle_notification(msg["method"], msg.get("params"))
            return
        if isinstance(msg_id, bool) or not isinstance(msg_id, int):
            return
        with self._pending_lock:
            pending = self._pending.get(msg_id)
        if pending is None:
            return
        error = msg.get("error")
        if error:
            if isinstance(error, dict):
                code = error.get("code")
                pending.error = RPCError(
                    code if isinstance(code, int) else RPCError.INTERNAL_ERROR,
                    str(error.get("message", "")),
                )
            else:
                pending.error = RPCError(RPCError.INTERNAL_ERROR, str(error))
        else:
            pending.result = msg.get("result")
        pending.event.set()

    def _handle_notification(self, method: str, params: Any) -> None:
        if not isinstance(params, dict):
            return
        if method == "event":
            self._vfs_hooks.on_event(self, params)
            return
        if method not in _REQUEST_NOTIFICATIONS:
            return
        req_id = params.get("id")
        if isinstance(req_id, bool) or not isinstance(req_id, int):
            return
        with self._pending_lock:
            pending = self._pending.get(req_id)
        if pending is None or pending.on_notification is None:
            return
        try:
            pending.on_notification(method, params)
        except Exception as e:  # noqa: BLE001 - surfaced by the request itself
            if pending.callback_error is None:
                pending.callback_error = e

    def _stderr_loop(self) -> None:
        proc = self._process
        assert proc is not None and proc.stderr is not None
        try:
            while True:
                chunk = proc.stderr.read1(65536)
                if not chunk:
                    return
                self._stderr_tail.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size - len(self._stderr_tail[0]) >= _STDERR_TAIL_BYTES:
                    self._stderr_size -= len(self._stderr_tail.popleft())
        except (OSError, ValueError):
            return

    def stderr_tail(self) -> str:
        """The last few KiB ``matchlock rpc`` wrote to its stderr (diagnostics)."""
        return b"".join(list(self._stderr_tail))[-_STDERR_TAIL_BYTES:].decode(
            "utf-8", errors="replace"
        )

    # ── Create ───────────────────────────────────────────────────────

    def launch(self, sandbox: Sandbox) -> str:
        """Create the VM described by ``sandbox`` and start its entrypoint.

        Like the original, this sends ``launch_entrypoint: true``; use
        :meth:`create` with ``sandbox.options()`` to only boot the VM.
        """
        opts = copy.copy(sandbox.options())
        opts.launch_entrypoint = True
        return self.create(opts)

    def create(self, opts: CreateOptions | None = None) -> str:
        """Create (boot) the VM; returns its id."""
        if opts is None:
            opts = CreateOptions()
        if not opts.image:
            raise MatchlockError("image is required (e.g., alpine:latest)")
        if opts.kernel_ref:
            raise MatchlockError(
                "kernel refs are not supported by this matchlock (the guest kernel is "
                "chosen by the host installation)"
            )
        if opts.network_mtu < 0:
            raise MatchlockError("network mtu must be > 0")
        if opts.no_network and (
            opts.allowed_hosts
            or opts.secrets
            or opts.force_interception
            or opts.network_interception is not None
            or opts.allow_tcp
        ):
            raise MatchlockError(
                "no network cannot be combined with allowed hosts, secrets, "
                "forced interception, or network interception rules"
            )
        for fwd in opts.port_forwards:
            _check_port(fwd.local_port, "local")
            _check_port(fwd.remote_port, "remote")

        wire_interception, callbacks = compile_network_rules(opts.network_interception)
        wire_vfs, vfs_hooks = VFSHooks.compile(opts.vfs_interception)

        self._stop_hook_server()
        if callbacks:
            self._hook_server = NetworkHookServer(callbacks)
            wire_interception = dict(wire_interception or {})
            wire_interception["callback_socket"] = self._hook_server.path

        params: dict[str, Any] = {"image": opts.image}
        if opts.privileged:
            params["privileged"] = True
        resources: dict[str, Any] = {}
        if opts.cpus:
            resources["cpus"] = opts.cpus
        if opts.memory_mb:
            resources["memory_mb"] = int(opts.memory_mb)
        if opts.disk_size_mb:
            resources["disk_size_mb"] = int(opts.disk_size_mb)
        if opts.timeout_seconds:
            resources["timeout_seconds"] = int(opts.timeout_seconds)
        if resources:
            params["resources"] = resources
        network = _network_params(opts, wire_interception)
        if network is not None:
            params["network"] = network
        if opts.mounts or opts.workspace or wire_vfs is not None:
            vfs: dict[str, Any] = {}
            if opts.workspace:
                vfs["workspace"] = opts.workspace
            if opts.mounts:
                vfs["mounts"] = {path: m.to_dict() for path, m in opts.mounts.items()}
            if wire_vfs is not None:
                vfs["interception"] = wire_vfs
            params["vfs"] = vfs
        if opts.env:
            params["env"] = dict(opts.env)
        if opts.extra_disks:
            params["extra_disks"] = [d.to_dict() for d in opts.extra_disks]
        if opts.image_config is not None:
            params["image_config"] = opts.image_config.to_dict()
        if opts.launch_entrypoint:
            params["launch_entrypoint"] = True

        try:
            result = self._send_request("create", params)
            vm_id = result.get("id") if isinstance(result, dict) else None
            if not isinstance(vm_id, str) or not vm_id:
                raise MatchlockError("invalid create response: missing id")
        except BaseException:
            self._stop_hook_server()
            raise
        self._vm_id = vm_id
        self._vfs_hooks = vfs_hooks
        if opts.port_forwards:
            self._port_forward_mappings(opts.port_forward_addresses, opts.port_forwards)
        return vm_id

    def _stop_hook_server(self) -> None:
        server, self._hook_server = self._hook_server, None
        if server is not None:
            server.close()

    # ── Exec ─────────────────────────────────────────────────────────

    @staticmethod
    def _exec_params(
        command: str | list[str], working_dir: str, user: str, env: dict[str, str] | None
    ) -> dict[str, Any]:
        if isinstance(command, (list, tuple)):
            command = [str(c) for c in command]
        elif not isinstance(command, str):
            raise TypeError("command must be a string or a list of strings")
        params: dict[str, Any] = {"command": command}
        if working_dir:
            params["working_dir"] = working_dir
        if user:
            params["user"] = user
        if env:
            params["env"] = dict(env)
        return params

    def exec(
        self,
        command: str | list[str],
        working_dir: str = "",
        timeout: float | None = None,
        *,
        user: str = "",
        env: dict[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecResult:
        """Run a command and collect its output.

        A string runs under ``/bin/sh -c``; a list is the argv. On ``timeout``
        the command is cancelled and :class:`TimeoutError` raised.
        """
        params = self._exec_params(command, working_dir, user, env)
        result = _result_object(
            self._send_request("exec", params, timeout=timeout, cancel=cancel), "exec"
        )
        out = _b64decode(result.get("stdout", ""), "exec stdout")
        err = _b64decode(result.get("stderr", ""), "exec stderr")
        return ExecResult(
            exit_code=_int_field(result, "exit_code", "exec"),
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
            duration_ms=_int_field(result, "duration_ms", "exec"),
            stdout_bytes=out,
            stderr_bytes=err,
        )

    def exec_stream(
        self,
        command: str | list[str],
        stdout: Any = None,
        stderr: Any = None,
        working_dir: str = "",
        timeout: float | None = None,
        *,
        user: str = "",
        env: dict[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecStreamResult:
        """Run a command, delivering output as it arrives.

        ``stdout``/``stderr`` may be text writers (UTF-8 text), binary
        writers (exact bytes) or callables taking ``bytes``.
        """
        params = self._exec_params(command, working_dir, user, env)
        sinks = {"exec_stream.stdout": OutputSink(stdout), "exec_stream.stderr": OutputSink(stderr)}

        def on_notification(method: str, p: dict[str, Any]) -> None:
            sink = sinks.get(method)
            if sink is not None:
                sink.write(_b64decode(p.get("data", ""), method))

        try:
            result = _result_object(
                self._send_request(
                    "exec_stream", params, on_notification, timeout=timeout, cancel=cancel
                ),
                "exec_stream",
            )
        finally:
            for sink in sinks.values():
                sink.finish()
        return ExecStreamResult(
            exit_code=_int_field(result, "exit_code", "exec_stream"),
            duration_ms=_int_field(result, "duration_ms", "exec_stream"),
        )

    def exec_pipe(
        self,
        command: str | list[str],
        stdin: Any = None,
        stdout: Any = None,
        stderr: Any = None,
        working_dir: str = "",
        timeout: float | None = None,
        user: str = "",
        *,
        env: dict[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecPipeResult:
        """Run a command with stdin piped in (no PTY).

        ``stdin`` is a readable stream (text or binary), ``bytes``/``str``, or
        ``None`` (EOF at once). Nothing is sent before the server's
        ``exec_pipe.ready``; then stdin goes in chunks of 4096 bytes and EOF
        follows when ``read`` returns nothing.
        """
        params = self._exec_params(command, working_dir, user, env)
        sinks = {"exec_pipe.stdout": OutputSink(stdout), "exec_pipe.stderr": OutputSink(stderr)}
        result = self._run_with_stdin(
            "exec_pipe", params, as_reader(stdin), sinks, None, timeout, cancel
        )
        return ExecPipeResult(
            exit_code=_int_field(result, "exit_code", "exec_pipe"),
            duration_ms=_int_field(result, "duration_ms", "exec_pipe"),
        )

    def exec_interactive(
        self,
        command: str | list[str],
        stdin: Any = None,
        stdout: Any = None,
        working_dir: str = "",
        rows: int = 24,
        cols: int = 80,
        resize: Iterable[tuple[int, int]] | None = None,
        timeout: float | None = None,
        user: str = "",
        *,
        env: dict[str, str] | None = None,
        cancel: threading.Event | None = None,
    ) -> ExecInteractiveResult:
        """Run a command on a PTY (``exec_tty``).

        ``resize`` yields ``(rows, cols)`` pairs, sent as ``exec_tty.resize``
        after the PTY is ready (it may block between items, e.g. a queue fed
        by a SIGWINCH handler).
        """
        params = self._exec_params(command, working_dir, user, env)
        params["rows"] = int(rows) if rows and rows > 0 else 24
        params["cols"] = int(cols) if cols and cols > 0 else 80
        sinks = {"exec_tty.stdout": OutputSink(stdout)}
        result = self._run_with_stdin(
            "exec_tty", params, as_reader(stdin), sinks, resize, timeout, cancel
        )
        return ExecInteractiveResult(
            exit_code=_int_field(result, "exit_code", "exec_tty"),
            duration_ms=_int_field(result, "duration_ms", "exec_tty"),
        )

    exec_tty = exec_interactive

    def _run_with_stdin(
        self,
        method: str,
        params: dict[str, Any],
        stdin: IO[Any] | None,
        sinks: dict[str, OutputSink],
        resize: Iterable[tuple[int, int]] | None,
        timeout: float | None,
        cancel: threading.Event | None,
    ) -> dict[str, Any]:
        req_id = self._next_id()
        ready = threading.Event()
        done = threading.Event()

        def wait_ready() -> bool:
            while not ready.wait(0.05):
                if done.is_set():
                    return False
            return True

        def pump_stdin() -> None:
            if not wait_ready() or done.is_set():
                return
            if stdin is None:
                self._send_fire_and_forget(f"{method}.stdin_eof", {"id": req_id})
                return
            while not done.is_set():
                try:
                    chunk = stdin.read(STDIN_CHUNK_BYTES)
                except Exception:  # noqa: BLE001 - a broken input ends stdin
                    break
                if chunk is None:  # non-blocking stream with nothing yet
                    done.wait(0.01)
                    continue
                data = chunk_to_bytes(chunk)
                if not data:
                    break
                for start in range(0, len(data), STDIN_CHUNK_BYTES):
                    if done.is_set():
                        return
                    self._send_fire_and_forget(
                        f"{method}.stdin",
                        {"id": req_id, "data": _b64encode(data[start : start + STDIN_CHUNK_BYTES])},
                    )
            if not done.is_set():
                self._send_fire_and_forget(f"{method}.stdin_eof", {"id": req_id})

        def pump_resize() -> None:
            if resize is None or not wait_ready() or done.is_set():
                return
            for size in resize:
                if done.is_set():
                    return
                if not isinstance(size, (tuple, list)) or len(size) < 2:
                    continue
                self._send_fire_and_forget(
                    "exec_tty.resize", {"id": req_id, "rows": int(size[0]), "cols": int(size[1])}
                )

        def on_notification(name: str, p: dict[str, Any]) -> None:
            if name == f"{method}.ready":
                ready.set()
                return
            sink = sinks.get(name)
            if sink is not None:
                sink.write(_b64decode(p.get("data", ""), name))

        threads = [threading.Thread(target=pump_stdin, name=f"matchlock-{method}-stdin", daemon=True)]
        if resize is not None:
            threads.append(
                threading.Thread(target=pump_resize, name="matchlock-exec_tty-resize", daemon=True)
            )
        for t in threads:
            t.start()
        try:
            raw = self._send_request(
                method, params, on_notification, timeout=timeout, cancel=cancel, req_id=req_id
            )
        finally:
            done.set()
            for t in threads:
                t.join(timeout=0.2)
            for sink in sinks.values():
                sink.finish()
        return _result_object(raw, method)

    # ── Files ────────────────────────────────────────────────────────

    def write_file(
        self, path: str, content: bytes | str, mode: int = 0o644, timeout: float | None = None
    ) -> None:
        """Write a file in the guest (parents are created). ``mode`` is always sent."""
        if isinstance(content, str):
            content = content.encode("utf-8")
        content = bytes(content)
        self._vfs_hooks.check_action("write", path, len(content), mode)
        content = self._vfs_hooks.mutate_write(path, content, mode)
        self._send_request(
            "write_file",
            {"path": path, "content": _b64encode(content), "mode": int(mode)},
            timeout=timeout,
        )

    def read_file(self, path: str, timeout: float | None = None) -> bytes:
        """Read a regular file from the guest."""
        self._vfs_hooks.check_action("read", path, 0, 0)
        result = _result_object(
            self._send_request("read_file", {"path": path}, timeout=timeout), "read_file"
        )
        return _b64decode(result.get("content", ""), "read_file content")

    def list_files(self, path: str, timeout: float | None = None) -> list[FileInfo]:
        """List a guest directory."""
        self._vfs_hooks.check_action("readdir", path, 0, 0)
        result = _result_object(
            self._send_request("list_files", {"path": path}, timeout=timeout), "list_files"
        )
        files = result.get("files") or []
        if not isinstance(files, list):
            raise MatchlockError("invalid list_files response: files must be a list")
        out = []
        for f in files:
            try:
                out.append(
                    FileInfo(
                        name=str(f["name"]),
                        size=int(f["size"]),
                        mode=int(f["mode"]),
                        is_dir=bool(f["is_dir"]),
                        mod_time=str(f.get("mod_time") or ""),
                    )
                )
            except (KeyError, TypeError, ValueError) as e:
                raise MatchlockError(f"invalid list_files entry {f!r}: {e}") from e
        return out

    # ── Logs ─────────────────────────────────────────────────────────

    def log(self, timeout: float | None = None) -> str:
        """The VM's console / entrypoint log so far."""
        result = _result_object(self._send_request("log", timeout=timeout), "log")
        content = result.get("content", "")
        if not isinstance(content, str):
            raise MatchlockError("invalid log response: content must be a string")
        try:
            return base64.b64decode(content, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            # Not base64: a server that sends the log as plain text.
            return content

    def log_stream(
        self,
        stdout: Any = None,
        timeout: float | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> None:
        """Follow the VM log until the server ends the stream, ``timeout``
        passes (:class:`TimeoutError`) or ``cancel`` is set (returns normally)."""
        sink = OutputSink(stdout)

        def on_notification(method: str, p: dict[str, Any]) -> None:
            if method == "log_stream.data":
                sink.write(_b64decode(p.get("data", ""), method))

        try:
            self._send_request("log_stream", None, on_notification, timeout=timeout, cancel=cancel)
        except RPCError as e:
            if not (cancel is not None and cancel.is_set() and e.is_cancelled()):
                raise
        finally:
            sink.finish()

    # ── Network at runtime ───────────────────────────────────────────

    def allow_list_add(self, *hosts: str, timeout: float | None = None) -> AllowListResult:
        """Add hosts to the running sandbox's allow-list."""
        return self._allow_list("allow_list_add", "added", hosts, timeout)

    def allow_list_delete(self, *hosts: str, timeout: float | None = None) -> AllowListResult:
        """Remove hosts from the running sandbox's allow-list."""
        return self._allow_list("allow_list_delete", "removed", hosts, timeout)

    def _allow_list(
        self, method: str, key: str, hosts: tuple[str, ...], timeout: float | None
    ) -> AllowListResult:
        flat = [h.strip() for item in hosts for h in str(item).split(",") if h.strip()]
        if not flat:
            raise MatchlockError("at least one host is required")
        result = _result_object(
            self._send_request(method, {"hosts": flat}, timeout=timeout), method
        )
        return AllowListResult(
            changed=[str(h) for h in result.get(key) or []],
            allowed_hosts=[str(h) for h in result.get("allowed_hosts") or []],
        )

    def port_forward(self, *specs: str) -> list[PortForwardBinding]:
        """Forward ``[LOCAL_PORT:]REMOTE_PORT`` specs on 127.0.0.1.

        Each call replaces the forwards set by earlier calls.
        """
        return self.port_forward_with_addresses(None, *specs)

    def port_forward_with_addresses(
        self, addresses: list[str] | None, *specs: str
    ) -> list[PortForwardBinding]:
        """Like :meth:`port_forward`, listening on ``addresses``."""
        return self._port_forward_mappings(addresses, [_parse_port_forward(s) for s in specs])

    def _port_forward_mappings(
        self, addresses: list[str] | None, forwards: list[PortForward]
    ) -> list[PortForwardBinding]:
        if not forwards:
            return []
        result = _result_object(
            self._send_request(
                "port_forward",
                {
                    "forwards": [
                        {"local_port": int(f.local_port), "remote_port": int(f.remote_port)}
                        for f in forwards
                    ],
                    "addresses": list(addresses) if addresses else ["127.0.0.1"],
                },
            ),
            "port_forward",
        )
        raw = result.get("bindings")
        if not isinstance(raw, list):
            raise MatchlockError("invalid port_forward response: bindings must be a list")
        bindings = []
        for b in raw:
            if not isinstance(b, dict):
                raise MatchlockError("invalid port_forward response: binding must be an object")
            address = str(b.get("address") or "").strip()
            if not address:
                raise MatchlockError("invalid port_forward response: binding address is required")
            local, remote = int(b.get("local_port") or 0), int(b.get("remote_port") or 0)
            if not (1 <= local <= 65535 and 1 <= remote <= 65535):
                raise MatchlockError(
                    "invalid port_forward response: ports must be in range 1-65535"
                )
            bindings.append(PortForwardBinding(address=address, local_port=local, remote_port=remote))
        return bindings


def _check_port(port: Any, role: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise MatchlockError(f"invalid {role} port {port!r}: must be in range 1-65535")
    return port


def _parse_port(raw: str, role: str) -> int:
    value = raw.strip()
    if not value:
        raise MatchlockError(f"invalid port-forward spec: empty {role} port")
    try:
        port = int(value, 10)
    except ValueError as e:
        raise MatchlockError(f"invalid port value {value!r}") from e
    if not 1 <= port <= 65535:
        raise MatchlockError(f"invalid port value {port}: must be in range 1-65535")
    return port


def _parse_port_forward(spec: str) -> PortForward:
    value = str(spec).strip()
    if not value:
        raise MatchlockError("invalid port-forward spec: empty spec")
    parts = value.split(":")
    if len(parts) == 1:
        port = _parse_port(parts[0], "remote")
        return PortForward(local_port=port, remote_port=port)
    if len(parts) == 2:
        return PortForward(
            local_port=_parse_port(parts[0], "local"), remote_port=_parse_port(parts[1], "remote")
        )
    raise MatchlockError(
        f"invalid port-forward spec: {value!r} (expected [LOCAL_PORT:]REMOTE_PORT)"
    )


def _network_params(
    opts: CreateOptions, wire_interception: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The ``network`` object of ``create``, as the original Python SDK builds it.

    Nothing is sent when no network option was set. With ``no_network`` only
    ``no_network`` (and DNS/hostname) goes. Otherwise ``allowed_hosts`` and
    ``block_private_ips`` (true unless set explicitly) are always present.
    """
    if opts.block_private_ips_set:
        block_private, explicit = opts.block_private_ips, True
    elif opts.block_private_ips:
        block_private, explicit = True, True
    else:
        block_private, explicit = True, False

    wanted = (
        opts.allowed_hosts
        or opts.add_hosts
        or opts.allow_tcp
        or opts.secrets
        or opts.dns_servers
        or opts.hostname
        or opts.network_mtu > 0
        or opts.no_network
        or explicit
        or opts.force_interception
        or wire_interception is not None
    )
    if not wanted:
        return None
    if opts.no_network:
        net: dict[str, Any] = {"no_network": True}
        if opts.dns_servers:
            net["dns_servers"] = list(opts.dns_servers)
        if opts.hostname:
            net["hostname"] = opts.hostname
        return net

    net = {"allowed_hosts": list(opts.allowed_hosts), "block_private_ips": block_private}
    if opts.add_hosts:
        net["add_hosts"] = [{"host": m.host, "ip": m.ip} for m in opts.add_hosts]
    if opts.allow_tcp:
        net["allow_tcp"] = list(opts.allow_tcp)
    if opts.force_interception or wire_interception is not None:
        net["intercept"] = True
    if wire_interception is not None:
        net["interception"] = wire_interception
    if opts.secrets:
        net["secrets"] = {s.name: s.to_dict() for s in opts.secrets}
    if opts.dns_servers:
        net["dns_servers"] = list(opts.dns_servers)
    if opts.hostname:
        net["hostname"] = opts.hostname
    if opts.network_mtu > 0:
        net["mtu"] = int(opts.network_mtu)
    return net
