"""Matchlock Python SDK: run code in ephemeral microVM sandboxes.

    from matchlock import Client, Sandbox

    sandbox = (
        Sandbox("python:3.12-alpine")
        .allow_host("api.anthropic.com")
        .add_secret("ANTHROPIC_API_KEY", os.environ["ANTHROPIC_API_KEY"], "api.anthropic.com")
    )
    with Client() as client:
        client.launch(sandbox)
        print(client.exec("echo hello").stdout)

The client drives ``matchlock rpc`` (``$MATCHLOCK_BIN``, default ``matchlock``).
"""

from .builder import Sandbox
from .client import Client
from .types import (
    NETWORK_HOOK_ACTION_ALLOW,
    NETWORK_HOOK_ACTION_BLOCK,
    NETWORK_HOOK_ACTION_MUTATE,
    NETWORK_HOOK_PHASE_AFTER,
    NETWORK_HOOK_PHASE_BEFORE,
    VFS_HOOK_ACTION_ALLOW,
    VFS_HOOK_ACTION_BLOCK,
    VFS_HOOK_OP_CHMOD,
    VFS_HOOK_OP_CLOSE,
    VFS_HOOK_OP_CREATE,
    VFS_HOOK_OP_MKDIR,
    VFS_HOOK_OP_OPEN,
    VFS_HOOK_OP_READ,
    VFS_HOOK_OP_READDIR,
    VFS_HOOK_OP_READLINK,
    VFS_HOOK_OP_REMOVE,
    VFS_HOOK_OP_REMOVE_ALL,
    VFS_HOOK_OP_RENAME,
    VFS_HOOK_OP_STAT,
    VFS_HOOK_OP_SYMLINK,
    VFS_HOOK_OP_SYNC,
    VFS_HOOK_OP_TRUNCATE,
    VFS_HOOK_OP_WRITE,
    VFS_HOOK_PHASE_AFTER,
    VFS_HOOK_PHASE_BEFORE,
    AllowListResult,
    CommandError,
    Config,
    CreateOptions,
    ExecInteractiveResult,
    ExecPipeResult,
    ExecResult,
    ExecStreamResult,
    ExtraDisk,
    FileInfo,
    HostIPMapping,
    ImageConfig,
    MatchlockError,
    MountConfig,
    NetworkBodyTransform,
    NetworkHookAction,
    NetworkHookPhase,
    NetworkHookRequest,
    NetworkHookRequestMutation,
    NetworkHookResponseMutation,
    NetworkHookResult,
    NetworkHookRule,
    NetworkInterceptionConfig,
    PortForward,
    PortForwardBinding,
    RPCError,
    Secret,
    VFSActionRequest,
    VFSHookAction,
    VFSHookEvent,
    VFSHookPhase,
    VFSHookRule,
    VFSInterceptionConfig,
    VFSMutateRequest,
    VolumeInfo,
)


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("matchlock")
    except PackageNotFoundError:  # running from a source checkout
        return "0.0.0+source"


__version__ = _version()

__all__ = [
    name for name in dir() if not name.startswith("_") and name not in ("builder", "client", "types")
]
