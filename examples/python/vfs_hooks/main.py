"""VFS hooks: a host rule the guest cannot get past, and hooks run in this process.

A host folder is mounted at /workspace (host_fs). The host blocks creating
/workspace/blocked.txt (the guest gets EPERM); an action hook refuses the
SDK's own write_file to /workspace/secret*.txt; a mutate hook rewrites what
write_file sends to /workspace/notes.txt; an after-hook records the host's
`write` events under /workspace.

    python3 examples/python/vfs_hooks/main.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import IMAGE, check  # noqa: E402

from matchlock import (  # noqa: E402
    VFS_HOOK_ACTION_BLOCK,
    VFS_HOOK_OP_CREATE,
    VFS_HOOK_OP_WRITE,
    VFS_HOOK_PHASE_AFTER,
    VFS_HOOK_PHASE_BEFORE,
    Client,
    MatchlockError,
    Sandbox,
    VFSHookRule,
    VFSInterceptionConfig,
)

REWRITTEN = b"rewritten by the SDK's mutate hook\n"


def wait_for(condition, what: str, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    print(f"(gave up waiting for {what})")
    return False


def main() -> None:
    folder = tempfile.mkdtemp(prefix="matchlock-vfs-example-")
    events: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def record(event) -> None:
        with lock:
            events.append((event.op, event.path, event.size))

    def seen(path: str) -> bool:
        with lock:
            return any(p == path for _, p, _ in events)

    interception = VFSInterceptionConfig(
        rules=[
            # On the host, for every program in the guest.
            VFSHookRule(
                name="no blocked.txt",
                phase=VFS_HOOK_PHASE_BEFORE,
                ops=[VFS_HOOK_OP_CREATE],
                path="/workspace/blocked.txt",
                action=VFS_HOOK_ACTION_BLOCK,
            ),
            # In this process, for this SDK's own file calls.
            VFSHookRule(
                name="no secrets from the SDK",
                ops=[VFS_HOOK_OP_WRITE],
                path="/workspace/secret*.txt",
                action_hook=lambda req: VFS_HOOK_ACTION_BLOCK,
            ),
            VFSHookRule(
                name="rewrite notes",
                path="/workspace/notes.txt",
                mutate_hook=lambda req: REWRITTEN,
            ),
            # After the fact, fed by the host's file events (emit_events is turned on).
            VFSHookRule(
                name="record writes",
                phase=VFS_HOOK_PHASE_AFTER,
                ops=[VFS_HOOK_OP_WRITE],
                path="/workspace/**",
                hook=record,
            ),
        ]
    )
    sandbox = Sandbox(IMAGE).mount_host_dir("/workspace", folder).with_vfs_interception(interception)

    try:
        with Client() as client:
            vm_id = client.launch(sandbox)
            print(f"sandbox {vm_id} is up, /workspace is {folder}")
            try:
                r = client.exec("echo hi > /workspace/blocked.txt", timeout=60)
                print(f"guest: {r.stderr.strip()}")
                check(r.exit_code != 0 and "Operation not permitted" in r.stderr,
                      "the host rule refused the guest's create of blocked.txt")
                check(not Path(folder, "blocked.txt").exists(), "nothing reached the host folder")

                try:
                    client.write_file("/workspace/secret.txt", "token=123")
                    check(False, "the action hook blocked write_file(secret.txt)")
                except MatchlockError as e:
                    check("blocked" in str(e), f"the action hook blocked write_file: {e}")
                check(not Path(folder, "secret.txt").exists(), "secret.txt was never written")

                client.write_file("/workspace/notes.txt", "the original text\n")
                cat = client.exec("cat /workspace/notes.txt", timeout=60)
                print(f"guest: cat notes.txt -> {cat.stdout.strip()}")
                check(cat.stdout.encode() == REWRITTEN, "the mutate hook replaced what write_file sent")
                check(Path(folder, "notes.txt").read_bytes() == REWRITTEN, "the host folder has the rewritten file")

                check(wait_for(lambda: seen("/workspace/notes.txt"), "the notes.txt write event"),
                      "the after-hook saw the write of notes.txt")
                client.exec("echo from the guest > /workspace/guest.txt", timeout=60)
                check(wait_for(lambda: seen("/workspace/guest.txt"), "the guest.txt write event"),
                      "the after-hook saw the guest's own write of guest.txt")
                with lock:
                    for op, path, size in events:
                        print(f"  event: {op} {path} ({size} bytes)")
                    check(not any("blocked" in p or "secret" in p for _, p, _ in events),
                          "refused operations are not events")
            finally:
                client.close()
                client.remove()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
