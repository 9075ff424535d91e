// Unit tests: the SDK against test/fake-matchlock.mjs (no VM, no network).
import { strict as assert } from "node:assert";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { CLI_LOG, FAKE_BIN, RECORD_FILE, received, sleep } from "./helpers.mjs";

process.env.MATCHLOCK_BIN = FAKE_BIN;
process.env.FAKE_RECORD = RECORD_FILE;
process.env.FAKE_CLI_LOG = CLI_LOG;
rmSync(RECORD_FILE, { force: true });
rmSync(CLI_LOG, { force: true });

const sdk = await import("../dist/index.js");
const { Client, Sandbox, MatchlockError, RPCError, defaultConfig, createSandbox } = sdk;

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

async function launched(sandbox = new Sandbox("busybox")) {
  const client = new Client();
  await client.launch(sandbox);
  return client;
}

async function createParams(client) {
  return JSON.parse((await client.exec("config")).stdout);
}

function collector() {
  const chunks = [];
  const fn = (chunk) => {
    chunks.push(Buffer.from(chunk));
  };
  fn.bytes = () => Buffer.concat(chunks);
  fn.text = () => Buffer.concat(chunks).toString("utf8");
  return fn;
}

describe("configuration", () => {
  test("MATCHLOCK_BIN is the default binary, matchlock without it", () => {
    assert.equal(defaultConfig().binaryPath, FAKE_BIN);
    const saved = process.env.MATCHLOCK_BIN;
    delete process.env.MATCHLOCK_BIN;
    try {
      assert.equal(defaultConfig().binaryPath, "matchlock");
      assert.equal(defaultConfig({ binaryPath: "/x/ml" }).binaryPath, "/x/ml");
      assert.equal(defaultConfig().useSudo, false);
    } finally {
      process.env.MATCHLOCK_BIN = saved;
    }
  });

  test("a missing binary fails create with MatchlockError", async () => {
    const client = new Client({ binaryPath: "/nonexistent/matchlock-binary" });
    await assert.rejects(client.launch(new Sandbox("busybox")), MatchlockError);
    await client.close();
  });
});

describe("create", () => {
  test("launch sends the original TypeScript client's shape", async () => {
    const client = await launched(new Sandbox("busybox"));
    try {
      assert.equal(client.vmId, "vm-0123abcd");
      const params = await createParams(client);
      assert.deepEqual(params, {
        image: "busybox",
        resources: { cpus: 1, memory_mb: 512, disk_size_mb: 5120, timeout_seconds: 300 },
        launch_entrypoint: true,
      });
    } finally {
      await client.close();
    }
  });

  test("create() without launch sends no launch_entrypoint; network, env and image config", async () => {
    const client = new Client();
    try {
      const sandbox = createSandbox("busybox")
        .withCPUs(2)
        .withMemory(1024)
        .withDiskSize(2048)
        .withTimeout(60)
        .withPrivileged()
        .allowHost("api.example.test", "*.cdn.test")
        .addHost("upstream.test", "127.0.0.1")
        .addSecret("API_KEY", "sk-real", "api.example.test")
        .addSecretWithPlaceholder("OTHER", "v2", "PLACEHOLDER_X", "other.test")
        .withDNSServers("1.1.1.1")
        .withHostname("box")
        .withNetworkMTU(1400)
        .withEnv("A", "1")
        .withEnvMap({ B: "2" })
        .withUser("1000:1000")
        .withEntrypoint("/bin/sh", "-c")
        .withImageConfig({ workingDir: "/srv", cmd: ["echo", "hi"], env: { PATH: "/bin" } })
        .withDisk("@data", "/data", true);
      await client.create(sandbox.options());
      const params = await createParams(client);
      assert.equal(params.launch_entrypoint, undefined);
      assert.deepEqual(params.resources, { cpus: 2, memory_mb: 1024, disk_size_mb: 2048, timeout_seconds: 60 });
      assert.equal(params.privileged, true);
      assert.deepEqual(params.network, {
        allowed_hosts: ["api.example.test", "*.cdn.test"],
        block_private_ips: true,
        add_hosts: [{ host: "upstream.test", ip: "127.0.0.1" }],
        secrets: {
          API_KEY: { value: "sk-real", hosts: ["api.example.test"] },
          OTHER: { value: "v2", hosts: ["other.test"], placeholder: "PLACEHOLDER_X" },
        },
        dns_servers: ["1.1.1.1"],
        hostname: "box",
        mtu: 1400,
      });
      assert.deepEqual(params.env, { A: "1", B: "2" });
      assert.deepEqual(params.image_config, {
        user: "1000:1000",
        working_dir: "/srv",
        entrypoint: ["/bin/sh", "-c"],
        cmd: ["echo", "hi"],
        env: { PATH: "/bin" },
      });
      assert.deepEqual(params.extra_disks, [{ host_path: "@data", guest_mount: "/data", readonly: true }]);
    } finally {
      await client.close();
    }
  });

  test("no network, private-IP override, forced interception", async () => {
    let client = await launched(new Sandbox("busybox").withNoNetwork().withHostname("h").addHost("a.test", "10.0.0.1"));
    assert.deepEqual((await createParams(client)).network, {
      no_network: true,
      add_hosts: [{ host: "a.test", ip: "10.0.0.1" }],
      hostname: "h",
    });
    await client.close();

    client = await launched(new Sandbox("busybox").allowPrivateIPs());
    assert.deepEqual((await createParams(client)).network, { allowed_hosts: [], block_private_ips: false });
    await client.close();

    client = await launched(new Sandbox("busybox").withNetworkInterception());
    assert.deepEqual((await createParams(client)).network, { allowed_hosts: [], block_private_ips: true, intercept: true });
    await client.close();
  });

  test("invalid options are refused before anything is sent", async () => {
    const client = new Client();
    await assert.rejects(client.create({}), /image is required/);
    await assert.rejects(client.launch(new Sandbox("busybox").withNoNetwork().allowHost("x.test")), /no network cannot be combined/);
    await assert.rejects(client.launch(new Sandbox("busybox").addHost("bad host", "1.2.3.4")), /whitespace/);
    await assert.rejects(client.launch(new Sandbox("busybox").addHost("h", "not-an-ip")), /invalid ip/);
    await assert.rejects(client.launch(new Sandbox("busybox").withNetworkMTU(-1)), /mtu/);
    await client.close();
  });

  test("a server error on create is an RPCError with the VM code", async () => {
    const client = new Client();
    try {
      const error = await client.launch(new Sandbox("bad-image")).catch((e) => e);
      assert.ok(error instanceof RPCError);
      assert.ok(error instanceof MatchlockError);
      assert.equal(error.code, -32000);
      assert.equal(error.code, RPCError.VM_FAILED);
      assert.ok(error.isVMError());
      assert.equal(error.rpcMessage, "pull bad-image: not found");
      assert.equal(error.message, "[-32000] pull bad-image: not found");
    } finally {
      await client.close();
    }
  });

  test("the builder hands out independent copies", () => {
    const sandbox = new Sandbox("busybox").allowHost("a.test");
    const first = sandbox.options();
    first.allowedHosts.push("b.test");
    assert.deepEqual(sandbox.options().allowedHosts, ["a.test"]);
  });
});

describe("exec", () => {
  let client;
  before(async () => (client = await launched()));
  after(async () => client.close());

  test("buffered exec decodes stdout and stderr", async () => {
    const result = await client.exec("echo hello");
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, "hello\n");
    assert.equal(result.stderr, "");
    assert.equal(result.durationMs, 3);
    const failed = await client.exec("fail");
    assert.equal(failed.exitCode, 3);
    assert.equal(failed.stderr, "boom\n");
  });

  test("output bytes 0x00-0xFF survive (stdoutBytes / stderrBytes)", async () => {
    const result = await client.exec("binary");
    assert.deepEqual(result.stdoutBytes, ALL_BYTES);
    assert.deepEqual(result.stderrBytes, Buffer.from(ALL_BYTES).reverse());
  });

  test("working_dir and user are sent only when given; argv commands stay arrays", async () => {
    await client.exec("whoami");
    const plain = received("exec").at(-1);
    assert.deepEqual(Object.keys(plain.params), ["command"]);
    const r = await client.exec("whoami", { workingDir: "/tmp", user: "nobody" });
    assert.equal(r.stdout, "nobody in /tmp\n");
    assert.deepEqual(received("exec").at(-1).params, { command: "whoami", working_dir: "/tmp", user: "nobody" });
    await client.execWithDir("whoami", "/srv");
    assert.deepEqual(received("exec").at(-1).params, { command: "whoami", working_dir: "/srv" });
    assert.equal((await client.exec(["echo", "a b"])).stdout, "echo a b");
    assert.deepEqual(received("exec").at(-1).params.command, ["echo", "a b"]);
  });

  test("an exec error is an RPCError with the exec code", async () => {
    const error = await client.exec("error-exec").catch((e) => e);
    assert.ok(error instanceof RPCError);
    assert.ok(error.isExecError());
    assert.equal(error.code, -32001);
  });

  test("execStream routes notifications to the writers by request id", async () => {
    const out = collector();
    const errChunks = [];
    const err = new Writable({
      write(chunk, _enc, cb) {
        errChunks.push(chunk);
        cb();
      },
    });
    const result = await client.execStream("stream", { stdout: out, stderr: err });
    assert.equal(result.exitCode, 0);
    assert.equal(result.durationMs, 2);
    assert.equal(out.text(), "one\ntwo\n"); // the stray notification for another id is not ours
    assert.equal(Buffer.concat(errChunks).toString(), "err\n");

    const bin = collector();
    await client.execStreamWithDir("binary", "/", bin);
    assert.deepEqual(bin.bytes(), ALL_BYTES);
  });

  test("execPipe sends no stdin before ready, then the chunks and EOF", async () => {
    const payload = Buffer.concat([ALL_BYTES, Buffer.alloc(150_000, 0x41), ALL_BYTES]);
    async function* input() {
      yield payload.subarray(0, 10); // offered immediately: must wait for ready
      await sleep(5);
      yield payload.subarray(10);
    }
    const out = collector();
    const err = collector();
    const result = await client.execPipe("cat", { stdin: input(), stdout: out, stderr: err });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(out.bytes(), payload);
    assert.equal(err.text(), `read ${payload.length} bytes\n`);
    const sent = received().filter((m) => m.method?.startsWith("exec_pipe."));
    assert.ok(sent.every((m) => Buffer.from(m.params.data ?? "", "base64").length <= 64 * 1024));
    assert.equal(sent.at(-1).method, "exec_pipe.stdin_eof");
  });

  test("execPipe without stdin sends EOF right after ready; Readable and string inputs work", async () => {
    const before = received("exec_pipe.stdin").length;
    assert.equal((await client.execPipe("cat")).exitCode, 0);
    assert.equal(received("exec_pipe.stdin").length, before);
    const out = collector();
    await client.execPipe("cat", { stdin: Readable.from([Buffer.from("ab"), "cd"]), stdout: out });
    assert.equal(out.text(), "abcd");
    const out2 = collector();
    await client.execPipeWithDir("cat", "/tmp", "single string", out2);
    assert.equal(out2.text(), "single string");
  });

  test("execPipe whose command exits first does not hang on unfinished stdin", async () => {
    async function* never() {
      await new Promise(() => undefined);
    }
    const result = await client.execPipe("early-exit", { stdin: never() });
    assert.equal(result.exitCode, 0);
  });

  test("execInteractive: rows/cols, resize and stdin after ready", async () => {
    const out = collector();
    const result = await client.execInteractive("sh", {
      stdin: ["ls\r", "exit\r"],
      stdout: out,
      rows: 30,
      cols: 100,
      resize: [[40, 120]],
    });
    assert.equal(result.exitCode, 0);
    assert.match(out.text(), /^ls\rexit\r/);
    assert.match(out.text(), /rows=30 cols=100 resizes=\[\[40,120\]\]/);
    const tty = received("exec_tty").at(-1);
    assert.deepEqual(tty.params, { command: "sh", rows: 30, cols: 100 });
    const defaults = collector();
    await client.execInteractive("sh", { stdout: defaults });
    assert.match(defaults.text(), /rows=24 cols=80/);
  });
});

describe("files, network, logs", () => {
  let client;
  before(async () => (client = await launched()));
  after(async () => client.close());

  test("writeFile/readFile round-trip every byte value; mode defaults to 0644", async () => {
    await client.writeFile("/workspace/bin.dat", ALL_BYTES);
    assert.equal(received("write_file").at(-1).params.mode, 420);
    assert.deepEqual(await client.readFile("/workspace/bin.dat"), ALL_BYTES);
    await client.writeFileMode("/workspace/run.sh", "#!/bin/sh\n", 0o755);
    assert.equal(received("write_file").at(-1).params.mode, 493);
    await client.writeFile("/workspace/u8.txt", new Uint8Array([104, 105]));
    assert.equal((await client.readFile("/workspace/u8.txt")).toString(), "hi");
  });

  test("reading a missing file is an RPCError with the file code", async () => {
    const error = await client.readFile("/nope").catch((e) => e);
    assert.ok(error instanceof RPCError);
    assert.ok(error.isFileError());
  });

  test("listFiles maps entries", async () => {
    const files = await client.listFiles("/workspace");
    const bin = files.find((f) => f.name === "bin.dat");
    assert.deepEqual(bin, { name: "bin.dat", size: 256, mode: 420, isDir: false, modTime: "2024-01-02T03:04:05Z" });
    assert.equal(files.find((f) => f.name === "sub").isDir, true);
  });

  test("portForward parses specs and returns bindings", async () => {
    const bindings = await client.portForward("8080", "18081:81");
    assert.deepEqual(bindings, [
      { address: "127.0.0.1", localPort: 8080, remotePort: 8080 },
      { address: "127.0.0.1", localPort: 18081, remotePort: 81 },
    ]);
    assert.deepEqual(received("port_forward").at(-1).params, {
      forwards: [
        { local_port: 8080, remote_port: 8080 },
        { local_port: 18081, remote_port: 81 },
      ],
      addresses: ["127.0.0.1"],
    });
    const any = await client.portForwardWithAddresses(["0.0.0.0"], "9000:90");
    assert.equal(any[0].address, "0.0.0.0");
    await assert.rejects(client.portForward("0"), /1-65535/);
    await assert.rejects(client.portForward("1:2:3"), /expected \[LOCAL_PORT:\]REMOTE_PORT/);
    await assert.rejects(client.portForward("x"), /invalid port value/);
  });

  test("port forwards in the builder are applied after create", async () => {
    const c = await launched(new Sandbox("busybox").withPortForward(18080, 80).withPortForwardAddresses("127.0.0.2"));
    assert.deepEqual(received("port_forward").at(-1).params, {
      forwards: [{ local_port: 18080, remote_port: 80 }],
      addresses: ["127.0.0.2"],
    });
    await c.close();
  });

  test("allowListAdd / allowListDelete", async () => {
    const added = await client.allowListAdd("a.test, b.test", "a.test");
    assert.deepEqual(received("allow_list_add").at(-1).params, { hosts: ["a.test", "b.test"] });
    assert.deepEqual(added, { added: ["a.test", "b.test"], removed: [], allowedHosts: ["a.test", "b.test"] });
    const removed = await client.allowListDelete("a.test");
    assert.deepEqual(removed, { added: [], removed: ["a.test"], allowedHosts: ["b.test"] });
    await assert.rejects(client.allowListAdd(" , "), /at least one host/);
  });

  test("log returns the content; logStream follows until aborted (cancel is sent)", async () => {
    assert.equal(await client.log(), "entrypoint started\nlistening\n");
    assert.equal(received("log").at(-1).params, undefined);
    const out = collector();
    const controller = new AbortController();
    const streaming = client.logStream({ stdout: out, signal: controller.signal });
    while (!out.text().includes("line 3")) await sleep(10);
    controller.abort();
    await assert.rejects(streaming, (e) => e.name === "AbortError" || e instanceof MatchlockError);
    await sleep(50);
    const stream = received("log_stream").at(-1);
    assert.ok(received("cancel").some((m) => m.params.id === stream.id));
  });

  test("events reach onEvent listeners", async () => {
    const events = [];
    const off = client.onEvent((e) => events.push(e));
    await client.exec("events");
    off();
    assert.equal(events.length, 3);
    assert.deepEqual(events[2].network, {
      method: "GET",
      url: "http://x.test/",
      host: "x.test",
      statusCode: 403,
      requestBytes: 10,
      responseBytes: 20,
      durationMs: 4,
      blocked: true,
      blockReason: "not allowed",
    });
    assert.equal(events[0].file.op, "WRITE");
  });
});

describe("cancellation", () => {
  let client;
  before(async () => (client = await launched()));
  after(async () => client.close());

  test("timeoutMs cancels the request on the server and rejects", async () => {
    const started = Date.now();
    await assert.rejects(client.exec("sleep", { timeoutMs: 150 }), /timed out after 150ms/);
    assert.ok(Date.now() - started < 2000);
    const execId = received("exec").at(-1).id;
    await sleep(50);
    assert.ok(received("cancel").some((m) => m.params.id === execId));
  });

  test("an AbortSignal cancels and rejects with the signal's reason", async () => {
    const controller = new AbortController();
    const pending = client.exec("sleep", { signal: controller.signal });
    await sleep(50);
    controller.abort(new Error("user gave up"));
    await assert.rejects(pending, /user gave up/);
    await assert.rejects(client.exec("sleep", { signal: AbortSignal.abort() }), (e) => e.name === "AbortError");
    // the client is still usable
    assert.equal((await client.exec("echo hello")).stdout, "hello\n");
  });
});

describe("network callback hooks", () => {
  test("each callback rule answers over the UNIX socket; a throwing hook answers {error}", async () => {
    const seen = [];
    const sandbox = new Sandbox("busybox").allowHost("api.example.test").withNetworkInterception({
      rules: [
        { phase: "before", hosts: ["api.example.test"], setHeaders: { "X-Static": "1" } },
        {
          name: "rewrite",
          phase: "before",
          hosts: ["api.example.test"],
          timeoutMs: 1500,
          hook: async (req) => {
            seen.push(req);
            return {
              request: {
                headers: { ...req.requestHeaders, "X-Hooked": ["yes"] },
                query: { model: "y" },
                path: "/v2/chat",
              },
            };
          },
        },
        {
          name: "boom",
          phase: "before",
          hook: () => {
            throw new Error("hook exploded");
          },
        },
        {
          phase: "after",
          hook: (req) => {
            seen.push(req);
            return {
              action: "mutate",
              response: {
                headers: { "X-Intercepted": ["callback"] },
                bodyReplacements: [{ find: "foo", replace: "bar" }],
                setBody: Buffer.from("\x00body"),
              },
            };
          },
        },
        { phase: "after", hook: () => null },
        { phase: "before", hook: () => new Promise((resolve) => setTimeout(resolve, 2000)), timeoutMs: 50 },
      ],
    });
    const client = await launched(sandbox);
    let socketPath;
    try {
      const params = await createParams(client);
      const interception = params.network.interception;
      socketPath = interception.callback_socket;
      assert.ok(socketPath && socketPath.endsWith("hook.sock"));
      assert.equal(params.network.intercept, true);
      assert.deepEqual(
        interception.rules.map((r) => r.callback_id),
        [undefined, "network_hook_2", "network_hook_3", "network_hook_4", "network_hook_5", "network_hook_6"],
      );
      assert.ok(interception.rules.every((r) => !("action" in r)), "no action unless the caller set one");
      assert.deepEqual(interception.rules[0], { phase: "before", hosts: ["api.example.test"], set_headers: { "X-Static": "1" } });
      assert.equal(interception.rules[1].timeout_ms, 1500);

      const replies = Object.fromEntries(
        JSON.parse((await client.exec("hook-replies")).stdout).map((r) => [r.callback_id, r.reply]),
      );
      assert.deepEqual(replies.network_hook_2, {
        request: {
          headers: { Authorization: ["Bearer SANDBOX_SECRET_0"], Accept: ["text/event-stream"], "X-Hooked": ["yes"] },
          query: { model: "y" },
          path: "/v2/chat",
        },
      });
      assert.deepEqual(replies.network_hook_3, { error: "hook exploded" });
      assert.deepEqual(replies.network_hook_4, {
        action: "mutate",
        response: {
          headers: { "X-Intercepted": ["callback"] },
          body_replacements: [{ find: "foo", replace: "bar" }],
          set_body_base64: Buffer.from("\x00body").toString("base64"),
        },
      });
      assert.deepEqual(replies.network_hook_5, {});
      assert.deepEqual(replies.network_hook_6, { error: "network hook callback timed out" });
      assert.ok(replies.network_hook_99.error);

      assert.equal(seen[0].phase, "before");
      assert.equal(seen[0].host, "api.example.test");
      assert.equal(seen[0].statusCode, 0);
      assert.deepEqual(seen[0].query, { model: "x" });
      assert.equal(seen[1].phase, "after");
      assert.equal(seen[1].statusCode, 200);
      assert.equal(seen[1].isSSE, true);
      assert.deepEqual(seen[1].responseHeaders, { "Content-Type": ["text/event-stream"] });
    } finally {
      await client.close();
    }
    assert.ok(!existsSync(socketPath), "the socket is removed on close");
  });

  test("a callback rule may not set a non-allow action", async () => {
    const client = new Client();
    await assert.rejects(
      client.launch(new Sandbox("busybox").withNetworkInterception({ rules: [{ action: "block", hook: () => null }] })),
      /callback hooks cannot set action/,
    );
    await client.close();
  });
});

describe("vfs", () => {
  test("the vfs request shape (mounts, workspace, interception)", async () => {
    const sandbox = new Sandbox("busybox")
      .withWorkspace("/workspace")
      .mountMemory("/workspace/tmp")
      .mountHostDir("/workspace/src", "/home/me/src")
      .mountHostDirReadonly("/workspace/ro", "/home/me/ro")
      .mountOverlay("/workspace/ov", "/home/me/ov")
      .withVFSInterception({
        rules: [
          { name: "no-secrets", phase: "before", ops: ["read", "open"], path: "/workspace/.env", action: "block" },
          { phase: "after", ops: ["write"], path: "/workspace/**", hook: () => undefined, timeoutMs: 100 },
        ],
      });
    const client = await launched(sandbox);
    try {
      assert.deepEqual((await createParams(client)).vfs, {
        workspace: "/workspace",
        mounts: {
          "/workspace/tmp": { type: "memory" },
          "/workspace/src": { type: "host_fs", host_path: "/home/me/src" },
          "/workspace/ro": { type: "host_fs", host_path: "/home/me/ro", readonly: true },
          "/workspace/ov": { type: "overlay", host_path: "/home/me/ov" },
        },
        interception: {
          emit_events: true,
          rules: [{ action: "block", name: "no-secrets", phase: "before", ops: ["read", "open"], path: "/workspace/.env" }],
        },
      });
    } finally {
      await client.close();
    }
  });

  test("local after-hooks see matching file events; action and mutate hooks gate SDK file calls", async () => {
    const events = [];
    const sandbox = new Sandbox("busybox").withVFSInterception({
      rules: [
        { phase: "after", ops: ["write"], path: "/workspace/**/*.txt", hook: (e) => events.push(e) },
        { phase: "before", ops: ["write"], path: "/workspace/blocked/*", actionHook: () => "block" },
        { phase: "before", ops: ["write"], path: "/workspace/upper/*", mutateHook: (r) => `size=${r.size}` },
      ],
    });
    const client = await launched(sandbox);
    try {
      await client.exec("events");
      await sleep(50);
      assert.deepEqual(events, [{ op: "write", path: "/workspace/out/a.txt", size: 5, mode: 420, uid: 0, gid: 0 }]);

      const writesBefore = received("write_file").length;
      await assert.rejects(client.writeFile("/workspace/blocked/x", "data"), /vfs action hook blocked operation/);
      assert.equal(received("write_file").length, writesBefore, "a blocked write is never sent");

      await client.writeFile("/workspace/upper/x", "hello");
      assert.equal((await client.readFile("/workspace/upper/x")).toString(), "size=5");
    } finally {
      await client.close();
    }
  });

  test("invalid local hook combinations are refused", async () => {
    const client = new Client();
    await assert.rejects(
      client.launch(new Sandbox("busybox").withVFSInterception({ rules: [{ phase: "before", hook: () => undefined }] })),
      /must use phase=after/,
    );
    await assert.rejects(
      client.launch(new Sandbox("busybox").withVFSInterception({ rules: [{ action: "mutate_write" }] })),
      /mutate_write requires/,
    );
    await client.close();
  });
});

describe("process lifecycle", () => {
  test("the process exiting fails pending requests; later calls say it is not running", async () => {
    const client = await launched();
    const pending = client.exec("sleep");
    const dying = client.exec("die");
    for (const p of [pending, dying]) {
      const error = await p.catch((e) => e);
      assert.ok(error instanceof MatchlockError);
      assert.match(error.message, /closed unexpectedly \(exit code 7\): fatal: guest agent vanished/);
    }
    await assert.rejects(client.exec("echo hello"), /not running/);
    await client.close(); // nothing to do, must not hang
  });

  test("close sends timeout_seconds 2 by default, then the process exits", async () => {
    const client = await launched();
    const started = Date.now();
    await client.close();
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual(received("close").at(-1).params, { timeout_seconds: 2 });
    await assert.rejects(client.exec("echo hello"), /client is closed/);
    await client.close(); // idempotent
  });

  test("a server that ignores close is killed after t+5 s for the answer plus t s", async () => {
    process.env.FAKE_MODE = "hang-close";
    let client;
    try {
      client = await launched();
    } finally {
      delete process.env.FAKE_MODE;
    }
    const started = Date.now();
    await client.close(0.5);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 5400 && elapsed < 8000, `close took ${elapsed} ms`);
    assert.deepEqual(received("close").at(-1).params, { timeout_seconds: 0.5 });
    const closeId = received("close").at(-1).id;
    assert.ok(received("cancel").some((m) => m.params.id === closeId), "the unanswered close is cancelled");
  });
});

describe("CLI helpers", () => {
  test("remove runs `rm <id>`; its failure is a MatchlockError", async () => {
    writeFileSync(CLI_LOG, "");
    const client = await launched();
    await client.close();
    await client.remove();
    assert.match(readFileSync(CLI_LOG, "utf8"), /^rm vm-0123abcd$/m);
    await new Client().remove(); // no VM: nothing to do
  });

  test("volume create / ls / rm", async () => {
    writeFileSync(CLI_LOG, "");
    const client = new Client();
    const created = await client.volumeCreate("data", 64);
    assert.deepEqual(created, {
      name: "data",
      size: "64.0 MB",
      sizeBytes: 64 * 1024 * 1024,
      path: "/var/lib/matchlock/volumes/data.ext4",
    });
    const list = await client.volumeList();
    assert.deepEqual(
      list.map((v) => [v.name, v.size, v.path]),
      [
        ["data", "64.0 MB", "/var/lib/matchlock/volumes/data.ext4"],
        ["cache", "10.0 MB", "/var/lib/matchlock/volumes/cache.ext4"],
      ],
    );
    await client.volumeRemove("data");
    await assert.rejects(client.volumeRemove("busy"), (e) => e instanceof MatchlockError && /in use/.test(e.message));
    await assert.rejects(client.volumeCreate(" "), /volume name is required/);
    await assert.rejects(client.volumeCreate("x", 0), /size must be > 0/);
    assert.deepEqual(readFileSync(CLI_LOG, "utf8").trim().split("\n"), [
      "volume create data --size 64 --json",
      "volume ls --json",
      "volume rm data",
      "volume rm busy",
    ]);
  });
});
