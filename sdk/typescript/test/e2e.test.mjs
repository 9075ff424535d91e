// End-to-end: drives the real `$MATCHLOCK_BIN rpc` with image busybox.
// Runs only with MATCHLOCK_E2E=1 (it boots a VM); skipped otherwise.
import { strict as assert } from "node:assert";
import { after, before, describe, test } from "node:test";

const enabled = process.env.MATCHLOCK_E2E === "1";
if (!enabled) {
  console.log("# e2e skipped: set MATCHLOCK_E2E=1 to drive $MATCHLOCK_BIN rpc with image busybox");
  test("e2e against matchlock rpc (busybox)", {
    skip: "set MATCHLOCK_E2E=1 to run against the real matchlock (boots a busybox VM)",
  }, () => undefined);
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe("e2e against matchlock rpc (busybox)", { skip: !enabled, timeout: 600_000 }, () => {
  let sdk;
  let client;

  before(async () => {
    sdk = await import("../dist/index.js");
    client = new sdk.Client();
    const id = await client.launch(new sdk.Sandbox("busybox"));
    assert.match(id, /^vm-[0-9a-f]{8}$/);
  });

  after(async () => {
    if (!client) return;
    await client.close();
    await client.remove();
  });

  test("exec echo hello", async () => {
    const result = await client.exec("echo hello");
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, "hello\n");
    assert.equal(result.stderr, "");
    const failed = await client.exec("echo oops >&2; exit 3");
    assert.equal(failed.exitCode, 3);
    assert.equal(failed.stderr, "oops\n");
  });

  test("exec_stream delivers stdout and stderr as they come", async () => {
    const out = [];
    const err = [];
    const result = await client.execStream("for i in 1 2 3; do echo out$i; echo err$i >&2; done", {
      stdout: (c) => out.push(c),
      stderr: (c) => err.push(c),
    });
    assert.equal(result.exitCode, 0);
    assert.equal(Buffer.concat(out).toString(), "out1\nout2\nout3\n");
    assert.equal(Buffer.concat(err).toString(), "err1\nerr2\nerr3\n");
  });

  test("exec_pipe feeds stdin to cat, binary safe", async () => {
    const out = [];
    const input = Buffer.concat([ALL_BYTES, Buffer.alloc(200_000, 0x5a), ALL_BYTES]);
    const result = await client.execPipe("cat", { stdin: [input.subarray(0, 1000), input.subarray(1000)], stdout: (c) => out.push(c) });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(Buffer.concat(out), input);
    const noStdin = await client.execPipe("cat");
    assert.equal(noStdin.exitCode, 0);
  });

  test("write_file / read_file round-trip binary content; list_files sees it", async () => {
    await client.writeFile("/tmp/e2e/bytes.bin", ALL_BYTES);
    assert.deepEqual(await client.readFile("/tmp/e2e/bytes.bin"), ALL_BYTES);
    await client.writeFileMode("/tmp/e2e/run.sh", "#!/bin/sh\necho ran\n", 0o755);
    assert.equal((await client.exec("/tmp/e2e/run.sh")).stdout, "ran\n");
    const files = await client.listFiles("/tmp/e2e");
    const bin = files.find((f) => f.name === "bytes.bin");
    assert.ok(bin, JSON.stringify(files));
    assert.equal(bin.size, 256);
    assert.equal(bin.isDir, false);
    assert.equal(bin.mode & 0o777, 0o644);
    assert.equal(files.find((f) => f.name === "run.sh").mode & 0o777, 0o755);
  });

  test("a missing file is a file error", async () => {
    const error = await client.readFile("/no/such/file").catch((e) => e);
    assert.ok(error instanceof sdk.RPCError, String(error));
    assert.equal(error.code, sdk.RPCError.FILE_FAILED);
  });

  test("close, then remove", async () => {
    await client.close();
    await client.remove();
    client = undefined;
  });
});
