"""SDK-side hooks: network callbacks over a UNIX socket, and local VFS hooks."""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import shutil
import socket
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .types import (
    NETWORK_HOOK_ACTION_ALLOW,
    VFS_HOOK_ACTION_ALLOW,
    VFS_HOOK_ACTION_BLOCK,
    VFS_HOOK_PHASE_AFTER,
    VFS_HOOK_PHASE_BEFORE,
    MatchlockError,
    NetworkHookCallback,
    NetworkHookRequest,
    NetworkHookResult,
    NetworkInterceptionConfig,
    VFSActionRequest,
    VFSHookEvent,
    VFSInterceptionConfig,
    VFSMutateRequest,
)

# A hook request is one small JSON object; anything bigger is refused.
_MAX_HOOK_REQUEST_BYTES = 4 * 1024 * 1024
# How long the SDK waits for the host to finish writing one request.
_HOOK_READ_TIMEOUT_SECONDS = 30.0


# ── Network callback hooks ─────────────────────────────────────────────


@dataclass
class _NetworkCallback:
    name: str
    phase: str
    hook: NetworkHookCallback


def compile_network_rules(
    cfg: NetworkInterceptionConfig | None,
) -> tuple[dict[str, Any] | None, dict[str, _NetworkCallback]]:
    """Turn rules into their wire form and collect the callback hooks.

    Callback rules get ``callback_id = network_hook_<position>``, positions
    counted from 1 over the whole rule list (static rules included).
    """
    if cfg is None:
        return None, {}
    wire_rules: list[dict[str, Any]] = []
    callbacks: dict[str, _NetworkCallback] = {}
    for position, rule in enumerate(cfg.rules, start=1):
        wire = rule.to_dict()
        if rule.hook is not None:
            action = (rule.action or "").strip().lower()
            if action not in ("", NETWORK_HOOK_ACTION_ALLOW):
                raise MatchlockError(
                    f"invalid network hook {rule.name!r}: callback hooks cannot set "
                    f"action={rule.action!r}"
                )
            callback_id = f"network_hook_{position}"
            callbacks[callback_id] = _NetworkCallback(
                name=rule.name,
                phase=(rule.phase or "").strip().lower(),
                hook=rule.hook,
            )
            wire["callback_id"] = callback_id
        wire_rules.append(wire)
    if not wire_rules:
        return None, callbacks
    return {"rules": wire_rules}, callbacks


def _string_map(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items()}


def _string_list_map(value: Any) -> dict[str, list[str]] | None:
    if not isinstance(value, dict):
        return None
    out: dict[str, list[str]] = {}
    for k, v in value.items():
        out[str(k)] = [str(x) for x in v] if isinstance(v, list) else [str(v)]
    return out


def hook_result_to_wire(result: Any) -> dict[str, Any]:
    """The JSON reply for what a callback returned (``None`` → ``{}``)."""
    if result is None:
        return {}
    if not isinstance(result, NetworkHookResult):
        raise MatchlockError(
            "invalid network hook result: expected NetworkHookResult or None, "
            f"got {type(result).__name__}"
        )
    reply: dict[str, Any] = {}
    action = str(result.action or "").strip().lower()
    if action:
        reply["action"] = action
    if result.request is not None:
        req: dict[str, Any] = {}
        if result.request.headers is not None:
            req["headers"] = _string_list_map(result.request.headers) or {}
        if result.request.query is not None:
            req["query"] = _string_map(result.request.query) or {}
        if result.request.path:
            req["path"] = str(result.request.path)
        if req:
            reply["request"] = req
    if result.response is not None:
        resp: dict[str, Any] = {}
        if result.response.headers is not None:
            resp["headers"] = _string_list_map(result.response.headers) or {}
        if result.response.body_replacements:
            resp["body_replacements"] = [
                b.to_dict() for b in result.response.body_replacements
            ]
        body = result.response.set_body
        if body is not None:
            if isinstance(body, str):
                body = body.encode("utf-8")
            if not isinstance(body, (bytes, bytearray)):
                raise MatchlockError(
                    "invalid network hook set_body: expected bytes, str or None"
                )
            resp["set_body_base64"] = base64.b64encode(bytes(body)).decode("ascii")
        if resp:
            reply["response"] = resp
    return reply


class NetworkHookServer:
    """Listens on a private UNIX socket; one connection = one hook call.

    The host writes one JSON request (a line, or until it half-closes) and
    reads one JSON line back. A hook that raises answers ``{"error": ...}``;
    the host then blocks the request.
    """

    def __init__(self, callbacks: dict[str, _NetworkCallback]) -> None:
        self._callbacks = dict(callbacks)
        self._dir = tempfile.mkdtemp(prefix="matchlock-hooks-")
        self.path = os.path.join(self._dir, "hook.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(self.path)
            self._listener.listen(64)
        except BaseException:
            self._listener.close()
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        self._closed = False
        self._thread = threading.Thread(
            target=self._accept_loop, name="matchlock-hook-accept", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Wake accept() up; closing alone does not on every platform.
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        shutil.rmtree(self._dir, ignore_errors=True)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(
                target=self._serve, args=(conn,), name="matchlock-hook", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                raw = self._read_request(conn)
            except Exception as e:  # noqa: BLE001 - reported to the host
                self._reply(conn, {"error": f"reading hook request: {e}"})
                return
            if not raw.strip():
                return
            self._reply(conn, self.answer(raw))

    def answer(self, raw: bytes) -> dict[str, Any]:
        """The reply for one raw request (separate for testing)."""
        try:
            payload = json.loads(raw.decode("utf-8"))
            if not isinstance(payload, dict):
                raise ValueError("hook request must be a JSON object")
        except Exception as e:  # noqa: BLE001
            return {"error": f"invalid hook request: {e}"}

        callback_id = str(payload.get("callback_id", "")).strip()
        callback = self._callbacks.get(callback_id)
        if callback is None:
            return {"error": f"network hook callback {callback_id!r} not found"}
        phase = str(payload.get("phase", "")).strip().lower()
        if phase not in ("before", "after"):
            phase = ""
        if callback.phase and callback.phase != phase:
            return {"error": "network hook phase mismatch"}

        try:
            status = int(payload.get("status_code") or 0)
        except (TypeError, ValueError):
            status = 0
        request = NetworkHookRequest(
            phase=phase,  # type: ignore[arg-type]
            host=str(payload.get("host", "")),
            method=str(payload.get("method", "")),
            path=str(payload.get("path", "")),
            query=_string_map(payload.get("query")),
            request_headers=_string_list_map(payload.get("request_headers")),
            status_code=status,
            response_headers=_string_list_map(payload.get("response_headers")),
            is_sse=bool(payload.get("is_sse")),
        )
        try:
            return hook_result_to_wire(callback.hook(request))
        except Exception as e:  # noqa: BLE001 - a failing hook blocks the request
            message = str(e) or type(e).__name__
            return {"error": f"network hook {callback.name or callback_id!r} failed: {message}"}

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes:
        conn.settimeout(_HOOK_READ_TIMEOUT_SECONDS)
        buf = bytearray()
        while b"\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > _MAX_HOOK_REQUEST_BYTES:
                raise ValueError("hook request too large")
        line, _, _ = bytes(buf).partition(b"\n")
        return line

    @staticmethod
    def _reply(conn: socket.socket, payload: dict[str, Any]) -> None:
        try:
            conn.sendall((json.dumps(payload) + "\n").encode("utf-8"))
        except OSError:
            pass


# ── Local VFS hooks ────────────────────────────────────────────────────


@dataclass
class _AfterHook:
    name: str
    ops: set[str]
    path: str
    dangerous: bool
    hook: Callable[..., Any]


@dataclass
class _BeforeHook:
    name: str
    ops: set[str]
    path: str
    hook: Callable[..., Any]


def _matches(ops: set[str], pattern: str, op: str, path: str) -> bool:
    if ops and op not in ops:
        return False
    if pattern and not fnmatch.fnmatchcase(path, pattern):
        return False
    return True


def _ids() -> tuple[int, int]:
    uid = os.geteuid() if hasattr(os, "geteuid") else 0
    gid = os.getegid() if hasattr(os, "getegid") else 0
    return uid, gid


class VFSHooks:
    """SDK-local VFS hooks compiled from a :class:`VFSInterceptionConfig`."""

    def __init__(self) -> None:
        self.after: list[_AfterHook] = []
        self.mutate: list[_BeforeHook] = []
        self.action: list[_BeforeHook] = []
        self._lock = threading.Lock()
        self._active = False

    @staticmethod
    def compile(
        cfg: VFSInterceptionConfig | None,
    ) -> tuple[dict[str, Any] | None, "VFSHooks"]:
        hooks = VFSHooks()
        if cfg is None:
            return None, hooks
        wire_rules: list[dict[str, Any]] = []
        for rule in cfg.rules:
            callbacks = [rule.hook, rule.dangerous_hook, rule.mutate_hook, rule.action_hook]
            if sum(cb is not None for cb in callbacks) > 1:
                raise MatchlockError(
                    f"invalid vfs hook {rule.name!r}: cannot set more than one callback hook"
                )
            action = (rule.action or "").strip().lower()
            phase = (rule.phase or "").strip().lower()
            ops = {op.lower() for op in rule.ops if op}
            if all(cb is None for cb in callbacks):
                if action == "mutate_write":
                    raise MatchlockError(
                        f"invalid vfs hook {rule.name!r}: mutate_write requires mutate_hook callback"
                    )
                wire_rules.append(rule.to_dict())
                continue
            kind = (
                "hook" if rule.hook is not None
                else "dangerous_hook" if rule.dangerous_hook is not None
                else "mutate_hook" if rule.mutate_hook is not None
                else "action_hook"
            )
            if action not in ("", VFS_HOOK_ACTION_ALLOW):
                raise MatchlockError(
                    f"invalid vfs hook {rule.name!r}: {kind} cannot set action={rule.action!r}"
                )
            if kind in ("hook", "dangerous_hook"):
                if phase != VFS_HOOK_PHASE_AFTER:
                    raise MatchlockError(
                        f"invalid vfs hook {rule.name!r}: {kind} must use phase=after"
                    )
                hooks.after.append(
                    _AfterHook(
                        name=rule.name,
                        ops=ops,
                        path=rule.path,
                        dangerous=kind == "dangerous_hook",
                        hook=rule.hook or rule.dangerous_hook,  # type: ignore[arg-type]
                    )
                )
                continue
            if phase not in ("", VFS_HOOK_PHASE_BEFORE):
                raise MatchlockError(
                    f"invalid vfs hook {rule.name!r}: {kind} must use phase=before"
                )
            target = hooks.mutate if kind == "mutate_hook" else hooks.action
            target.append(
                _BeforeHook(
                    name=rule.name,
                    ops=ops,
                    path=rule.path,
                    hook=rule.mutate_hook or rule.action_hook,  # type: ignore[arg-type]
                )
            )
        wire: dict[str, Any] = {}
        if cfg.emit_events or hooks.after:
            wire["emit_events"] = True
        if wire_rules:
            wire["rules"] = wire_rules
        return (wire or None), hooks

    # Before-hooks run in the caller's thread, before the request is sent.

    def check_action(self, op: str, path: str, size: int, mode: int) -> None:
        if not self.action:
            return
        uid, gid = _ids()
        request = VFSActionRequest(op=op, path=path, size=size, mode=mode, uid=uid, gid=gid)
        for h in self.action:
            if not _matches(h.ops, h.path, op, path):
                continue
            decision = str(h.hook(request) or "").strip().lower()
            if decision in ("", VFS_HOOK_ACTION_ALLOW):
                continue
            if decision == VFS_HOOK_ACTION_BLOCK:
                raise MatchlockError(
                    f"vfs action hook blocked operation: op={op} path={path} hook={h.name!r}"
                )
            raise MatchlockError(
                f"invalid action_hook return value for {h.name!r}: expected "
                f"'allow' or 'block', got {decision!r}"
            )

    def mutate_write(self, path: str, content: bytes, mode: int) -> bytes:
        if not self.mutate:
            return content
        uid, gid = _ids()
        current = content
        for h in self.mutate:
            if not _matches(h.ops, h.path, "write", path):
                continue
            out = h.hook(
                VFSMutateRequest(path=path, size=len(current), mode=mode, uid=uid, gid=gid)
            )
            if out is None:
                continue
            if isinstance(out, str):
                current = out.encode("utf-8")
            elif isinstance(out, (bytes, bytearray)):
                current = bytes(out)
            else:
                raise MatchlockError(
                    f"invalid mutate_hook return type for {h.name!r}: expected bytes, str or None"
                )
        return current

    # After-hooks run on their own threads, fed by `event` notifications.

    def on_event(self, client: Any, params: dict[str, Any]) -> None:
        if not self.after:
            return
        file_event = params.get("file")
        if not isinstance(file_event, dict):
            return
        op = str(file_event.get("op", "")).lower()
        if not op:
            return
        path = str(file_event.get("path", ""))

        def num(key: str) -> int:
            try:
                return int(file_event.get(key) or 0)
            except (TypeError, ValueError):
                return 0

        event = VFSHookEvent(
            op=op, path=path, size=num("size"), mode=num("mode"), uid=num("uid"), gid=num("gid")
        )
        safe: list[_AfterHook] = []
        for h in self.after:
            if not _matches(h.ops, h.path, op, path):
                continue
            if h.dangerous:
                threading.Thread(
                    target=_run_quietly, args=(h.hook, client, event), daemon=True
                ).start()
            else:
                safe.append(h)
        if not safe:
            return
        with self._lock:
            # Events caused by a running safe hook do not re-enter it.
            if self._active:
                return
            self._active = True
        threading.Thread(target=self._run_safe, args=(safe, event), daemon=True).start()

    def _run_safe(self, hooks: list[_AfterHook], event: VFSHookEvent) -> None:
        try:
            for h in hooks:
                _run_quietly(h.hook, event)
        finally:
            with self._lock:
                self._active = False


def _run_quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - after-hooks cannot fail the operation
        pass
