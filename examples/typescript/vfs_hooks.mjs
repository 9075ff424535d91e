// vfs_hooks: a host rule the guest cannot get past, and hooks run in this process.
// /workspace is an in-memory file system. The host blocks creating /workspace/blocked.txt
// (the guest gets EPERM); an action hook refuses the SDK's own writeFile to
// /workspace/secret*.txt; a mutate hook rewrites what writeFile sends to /workspace/notes.txt;
// an after-hook records the host's `write` events under /workspace.
//
//   node vfs_hooks.mjs
import {
  Client,
  Sandbox,
  VFS_HOOK_ACTION_BLOCK,
  VFS_HOOK_OP_CREATE,
  VFS_HOOK_OP_WRITE,
  VFS_HOOK_PHASE_AFTER,
  VFS_HOOK_PHASE_BEFORE,
} from "../../sdk/typescript/dist/index.js";

const IMAGE = process.env.MATCHLOCK_EXAMPLE_IMAGE || "busybox";
const REWRITTEN = "rewritten by the SDK's mutate hook\n";

function check(condition, what) {
  if (!condition) {
    throw new Error(what);
  }
  console.log(`ok: ${what}`);
}

async function waitFor(condition, seconds = 15) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (condition()) {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

const events = [];
const seen = (path) => events.some((e) => e.path === path);

const sandbox = new Sandbox(IMAGE).mountMemory("/workspace").withVFSInterception({
  rules: [
    // On the host, for every program in the guest.
    { name: "no blocked.txt", phase: VFS_HOOK_PHASE_BEFORE, ops: [VFS_HOOK_OP_CREATE], path: "/workspace/blocked.txt", action: VFS_HOOK_ACTION_BLOCK },
    // In this process, for this SDK's own file calls.
    { name: "no secrets from the SDK", ops: [VFS_HOOK_OP_WRITE], path: "/workspace/secret*.txt", actionHook: () => VFS_HOOK_ACTION_BLOCK },
    { name: "rewrite notes", path: "/workspace/notes.txt", mutateHook: () => REWRITTEN },
    // After the fact, fed by the host's file events (emitEvents is turned on for it).
    {
      name: "record writes",
      phase: VFS_HOOK_PHASE_AFTER,
      ops: [VFS_HOOK_OP_WRITE],
      path: "/workspace/**",
      hook: (event) => {
        events.push({ op: event.op, path: event.path, size: event.size });
      },
    },
  ],
});

const client = new Client();
let failed = false;
try {
  const id = await client.launch(sandbox);
  console.log(`sandbox ${id} is up, /workspace is in memory`);

  const blocked = await client.exec("echo hi > /workspace/blocked.txt");
  console.log(`guest: ${blocked.stderr.trim()}`);
  check(blocked.exitCode !== 0 && blocked.stderr.includes("Operation not permitted"), "the host rule refused the guest's create of blocked.txt");

  let refused = null;
  try {
    await client.writeFile("/workspace/secret.txt", "token=123");
  } catch (error) {
    refused = error;
  }
  check(refused !== null && String(refused.message).includes("blocked"), `the action hook blocked writeFile (${refused?.message})`);
  const absent = await client.exec("test -e /workspace/secret.txt");
  check(absent.exitCode !== 0, "secret.txt was never written");

  await client.writeFile("/workspace/notes.txt", "the original text\n");
  const cat = await client.exec("cat /workspace/notes.txt");
  console.log(`guest: cat notes.txt -> ${cat.stdout.trim()}`);
  check(cat.stdout === REWRITTEN, "the mutate hook replaced what writeFile sent");

  check(await waitFor(() => seen("/workspace/notes.txt")), "the after-hook saw the write of notes.txt");
  await client.exec("echo from the guest > /workspace/guest.txt");
  check(await waitFor(() => seen("/workspace/guest.txt")), "the after-hook saw the guest's own write of guest.txt");
  for (const e of events) {
    console.log(`  event: ${e.op} ${e.path} (${e.size} bytes)`);
  }
  check(!events.some((e) => e.path.includes("blocked") || e.path.includes("secret")), "refused operations are not events");
} catch (error) {
  failed = true;
  console.error(`vfs_hooks: FAILED: ${error instanceof Error ? error.message : error}`);
} finally {
  await client.close();
  await client.remove().catch(() => undefined);
}
process.exitCode = failed ? 1 : 0;
