"""Data types, constants and errors of the Matchlock Python SDK.

Every option type knows how to turn itself into the JSON shape that
``matchlock rpc`` expects (``to_dict``); only fields that were set are sent,
so the server applies its own defaults for the rest.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, TypeAlias

# ── Network hook constants ─────────────────────────────────────────────

NETWORK_HOOK_PHASE_BEFORE = "before"
NETWORK_HOOK_PHASE_AFTER = "after"
NETWORK_HOOK_ACTION_ALLOW = "allow"
NETWORK_HOOK_ACTION_BLOCK = "block"
NETWORK_HOOK_ACTION_MUTATE = "mutate"

NetworkHookPhase: TypeAlias = Literal["", "before", "after"]
NetworkHookAction: TypeAlias = Literal["allow", "block", "mutate"]

# ── VFS hook constants ─────────────────────────────────────────────────

VFS_HOOK_PHASE_BEFORE = "before"
VFS_HOOK_PHASE_AFTER = "after"
VFS_HOOK_ACTION_ALLOW = "allow"
VFS_HOOK_ACTION_BLOCK = "block"

VFS_HOOK_OP_STAT = "stat"
VFS_HOOK_OP_READDIR = "readdir"
VFS_HOOK_OP_OPEN = "open"
VFS_HOOK_OP_CREATE = "create"
VFS_HOOK_OP_MKDIR = "mkdir"
VFS_HOOK_OP_CHMOD = "chmod"
VFS_HOOK_OP_REMOVE = "remove"
VFS_HOOK_OP_REMOVE_ALL = "remove_all"
VFS_HOOK_OP_RENAME = "rename"
VFS_HOOK_OP_SYMLINK = "symlink"
VFS_HOOK_OP_READLINK = "readlink"
VFS_HOOK_OP_READ = "read"
VFS_HOOK_OP_WRITE = "write"
VFS_HOOK_OP_CLOSE = "close"
VFS_HOOK_OP_SYNC = "sync"
VFS_HOOK_OP_TRUNCATE = "truncate"

VFSHookPhase: TypeAlias = Literal["", "before", "after"]
VFSHookAction: TypeAlias = Literal["allow", "block"]


def _nonempty(d: dict[str, Any], key: str, value: Any) -> None:
    """Put ``value`` under ``key`` only when it is set (truthy)."""
    if value:
        d[key] = value


# ── Client configuration ───────────────────────────────────────────────


@dataclass
class Config:
    """How the client starts ``matchlock rpc``."""

    binary_path: str = "matchlock"
    """Path (or name on $PATH) of the matchlock binary."""

    use_sudo: bool = False
    """Run ``sudo <binary> rpc`` instead of ``<binary> rpc``."""


# ── Network ────────────────────────────────────────────────────────────


@dataclass
class NetworkBodyTransform:
    """A literal find/replace applied to a response body (after phase)."""

    find: str
    replace: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"find": self.find}
        _nonempty(d, "replace", self.replace)
        return d


@dataclass
class NetworkHookRequest:
    """What an SDK-side network callback hook is told about a request."""

    phase: NetworkHookPhase = ""
    host: str = ""
    method: str = ""
    path: str = ""
    query: dict[str, str] | None = None
    request_headers: dict[str, list[str]] | None = None
    status_code: int = 0
    response_headers: dict[str, list[str]] | None = None
    is_sse: bool = False


@dataclass
class NetworkHookRequestMutation:
    """Changes a callback hook makes to the outgoing request.

    ``headers`` and ``query`` replace the whole map (the Host header is kept);
    ``None`` leaves them untouched.
    """

    headers: dict[str, list[str]] | None = None
    query: dict[str, str] | None = None
    path: str = ""


@dataclass
class NetworkHookResponseMutation:
    """Changes a callback hook makes to the response (after phase)."""

    headers: dict[str, list[str]] | None = None
    body_replacements: list[NetworkBodyTransform] = field(default_factory=list)
    set_body: bytes | str | None = None


@dataclass
class NetworkHookResult:
    """What a callback hook returns; ``None`` from a hook means "no change"."""

    action: NetworkHookAction = "allow"
    request: NetworkHookRequestMutation | None = None
    response: NetworkHookResponseMutation | None = None


NetworkHookCallback: TypeAlias = Callable[[NetworkHookRequest], "NetworkHookResult | None"]


@dataclass
class NetworkHookRule:
    """One network interception rule, static or with an SDK-side ``hook``."""

    name: str = ""
    phase: NetworkHookPhase = ""
    hosts: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    path: str = ""
    action: NetworkHookAction = "allow"
    set_headers: dict[str, str] = field(default_factory=dict)
    delete_headers: list[str] = field(default_factory=list)
    set_query: dict[str, str] = field(default_factory=dict)
    delete_query: list[str] = field(default_factory=list)
    rewrite_path: str = ""
    set_response_headers: dict[str, str] = field(default_factory=dict)
    delete_response_headers: list[str] = field(default_factory=list)
    body_replacements: list[NetworkBodyTransform] = field(default_factory=list)
    timeout_ms: int = 0
    hook: NetworkHookCallback | None = None
    """Called by the host (through a UNIX socket) for every matching request."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"action": self.action or NETWORK_HOOK_ACTION_ALLOW}
        _nonempty(d, "name", self.name)
        _nonempty(d, "phase", self.phase)
        _nonempty(d, "hosts", list(self.hosts))
        _nonempty(d, "methods", list(self.methods))
        _nonempty(d, "path", self.path)
        _nonempty(d, "set_headers", dict(self.set_headers))
        _nonempty(d, "delete_headers", list(self.delete_headers))
        _nonempty(d, "set_query", dict(self.set_query))
        _nonempty(d, "delete_query", list(self.delete_query))
        _nonempty(d, "rewrite_path", self.rewrite_path)
        _nonempty(d, "set_response_headers", dict(self.set_response_headers))
        _nonempty(d, "delete_response_headers", list(self.delete_response_headers))
        if self.body_replacements:
            d["body_replacements"] = [b.to_dict() for b in self.body_replacements]
        if self.timeout_ms > 0:
            d["timeout_ms"] = int(self.timeout_ms)
        return d


@dataclass
class NetworkInterceptionConfig:
    """Network interception rules (evaluated in order by the host)."""

    rules: list[NetworkHookRule] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.rules:
            d["rules"] = [r.to_dict() for r in self.rules]
        return d


@dataclass
class Secret:
    """A secret the guest only sees as a placeholder.

    The host replaces the placeholder with ``value`` in requests to ``hosts``.
    """

    name: str
    value: str
    hosts: list[str] = field(default_factory=list)
    placeholder: str = field(default="", kw_only=True)
    """Placeholder the guest sees instead of the generated one (optional)."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": self.value, "hosts": list(self.hosts)}
        _nonempty(d, "placeholder", self.placeholder)
        return d


@dataclass
class HostIPMapping:
    """A static name → IP entry for the guest (``--add-host``)."""

    host: str
    ip: str


@dataclass
class PortForward:
    """A host port forwarded to a guest port."""

    local_port: int
    remote_port: int


@dataclass
class PortForwardBinding:
    """A listener the host actually opened for a port forward."""

    address: str
    local_port: int
    remote_port: int


# ── Files, disks and the image ─────────────────────────────────────────


@dataclass
class MountConfig:
    """A VFS mount: ``memory``, ``host_fs`` (live) or ``overlay`` (snapshot)."""

    type: str = "memory"
    host_path: str = ""
    readonly: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type}
        _nonempty(d, "host_path", self.host_path)
        if self.readonly:
            d["readonly"] = True
        return d


@dataclass
class VFSHookEvent:
    """A file operation reported by the host (delivered to after-hooks)."""

    op: str
    path: str
    size: int
    mode: int
    uid: int
    gid: int


@dataclass
class VFSMutateRequest:
    """Input of an SDK-side ``mutate_hook`` (runs before ``write_file``)."""

    path: str
    size: int
    mode: int
    uid: int
    gid: int


@dataclass
class VFSActionRequest:
    """Input of an SDK-side ``action_hook`` (runs before file calls)."""

    op: str
    path: str
    size: int
    mode: int
    uid: int
    gid: int


@dataclass
class VFSHookRule:
    """One VFS interception rule: a host-side rule or an SDK-side callback."""

    name: str = ""
    phase: VFSHookPhase = ""
    ops: list[str] = field(default_factory=list)
    path: str = ""
    action: str = "allow"
    timeout_ms: int = 0
    hook: Callable[[VFSHookEvent], Any] | None = None
    """After-hook: ``hook(event)``; not re-entered while one is running."""
    dangerous_hook: Callable[[Any, VFSHookEvent], Any] | None = None
    """After-hook given the client: ``dangerous_hook(client, event)``."""
    mutate_hook: Callable[[VFSMutateRequest], bytes | str | None] | None = None
    """Before ``write_file``: returns new content, or ``None`` to keep it."""
    action_hook: Callable[[VFSActionRequest], str] | None = None
    """Before ``write_file``/``read_file``/``list_files``: ``"allow"`` or ``"block"``."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"action": self.action or VFS_HOOK_ACTION_ALLOW}
        _nonempty(d, "name", self.name)
        _nonempty(d, "phase", self.phase)
        _nonempty(d, "ops", list(self.ops))
        _nonempty(d, "path", self.path)
        if self.timeout_ms > 0:
            d["timeout_ms"] = int(self.timeout_ms)
        return d


@dataclass
class VFSInterceptionConfig:
    """VFS interception rules and whether the host emits file events."""

    emit_events: bool = False
    rules: list[VFSHookRule] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.emit_events:
            d["emit_events"] = True
        if self.rules:
            d["rules"] = [r.to_dict() for r in self.rules]
        return d


@dataclass
class ExtraDisk:
    """An ext4 image attached as a block device (``--disk``)."""

    host_path: str
    guest_mount: str
    readonly: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"host_path": self.host_path, "guest_mount": self.guest_mount}
        if self.readonly:
            d["readonly"] = True
        return d


@dataclass
class ImageConfig:
    """Overrides of the image's USER / WORKDIR / ENTRYPOINT / CMD / ENV."""

    user: str = ""
    working_dir: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        _nonempty(d, "user", self.user)
        _nonempty(d, "working_dir", self.working_dir)
        _nonempty(d, "entrypoint", list(self.entrypoint))
        _nonempty(d, "cmd", list(self.cmd))
        _nonempty(d, "env", dict(self.env))
        return d


@dataclass
class CreateOptions:
    """Everything ``create`` can be told. Zero values mean "server default"."""

    image: str = ""
    kernel_ref: str = ""
    """Kept for source compatibility; this server has no per-sandbox kernel
    and ``create`` refuses a non-empty value."""
    privileged: bool = False
    cpus: float = 0
    memory_mb: int = 0
    disk_size_mb: int = 0
    timeout_seconds: int = 0
    allowed_hosts: list[str] = field(default_factory=list)
    allow_tcp: list[str] = field(default_factory=list)
    add_hosts: list[HostIPMapping] = field(default_factory=list)
    block_private_ips: bool = False
    block_private_ips_set: bool = False
    no_network: bool = False
    force_interception: bool = False
    network_interception: NetworkInterceptionConfig | None = None
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[Secret] = field(default_factory=list)
    dns_servers: list[str] = field(default_factory=list)
    hostname: str = ""
    network_mtu: int = 0
    port_forwards: list[PortForward] = field(default_factory=list)
    port_forward_addresses: list[str] = field(default_factory=list)
    image_config: ImageConfig | None = None
    launch_entrypoint: bool = False
    workspace: str = ""
    mounts: dict[str, MountConfig] = field(default_factory=dict)
    vfs_interception: VFSInterceptionConfig | None = None
    extra_disks: list[ExtraDisk] = field(default_factory=list)


# ── Results ────────────────────────────────────────────────────────────


@dataclass
class ExecResult:
    """Result of :meth:`Client.exec`.

    ``stdout``/``stderr`` are UTF-8 decoded (invalid bytes replaced);
    ``stdout_bytes``/``stderr_bytes`` hold the exact bytes.
    """

    exit_code: int
    stdout: str
    stderr: str
    duration_ms: int
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""


@dataclass
class ExecStreamResult:
    """Result of :meth:`Client.exec_stream` (output went to the writers)."""

    exit_code: int
    duration_ms: int


@dataclass
class ExecPipeResult:
    """Result of :meth:`Client.exec_pipe`."""

    exit_code: int
    duration_ms: int


@dataclass
class ExecInteractiveResult:
    """Result of :meth:`Client.exec_interactive`."""

    exit_code: int
    duration_ms: int


@dataclass
class FileInfo:
    """One entry of :meth:`Client.list_files`."""

    name: str
    size: int
    mode: int
    is_dir: bool
    mod_time: str = ""


@dataclass
class VolumeInfo:
    """A named volume (``matchlock volume``)."""

    name: str
    size: str
    path: str


@dataclass
class AllowListResult:
    """Answer of :meth:`Client.allow_list_add` / :meth:`Client.allow_list_delete`."""

    changed: list[str]
    """Hosts that were added (or removed) by this call."""
    allowed_hosts: list[str]
    """The whole allow-list after the change."""


# ── Errors ─────────────────────────────────────────────────────────────


class MatchlockError(Exception):
    """Base class of every error the SDK raises."""


class RPCError(MatchlockError):
    """An error answer from ``matchlock rpc`` (JSON-RPC ``code`` and ``message``)."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    VM_FAILED = -32000
    EXEC_FAILED = -32001
    FILE_FAILED = -32002
    CANCELLED = -32003

    def __init__(self, code: int, message: str):
        self.code = code
        self.message = message
        super().__init__(f"[{code}] {message}")

    def is_vm_error(self) -> bool:
        return self.code == self.VM_FAILED

    def is_exec_error(self) -> bool:
        return self.code == self.EXEC_FAILED

    def is_file_error(self) -> bool:
        return self.code == self.FILE_FAILED

    def is_cancelled(self) -> bool:
        return self.code == self.CANCELLED


class CommandError(MatchlockError, subprocess.CalledProcessError):
    """A ``matchlock`` CLI call (``rm``, ``volume …``) exited non-zero.

    It is also a :class:`subprocess.CalledProcessError`, which is what the
    original SDK let through, so existing ``except`` clauses keep working.
    """

    def __init__(self, returncode: int, cmd: list[str], output: str = "", stderr: str = ""):
        subprocess.CalledProcessError.__init__(self, returncode, cmd, output, stderr)

    def __str__(self) -> str:
        detail = (self.stderr or "").strip()
        base = subprocess.CalledProcessError.__str__(self)
        return f"{base}: {detail}" if detail else base
