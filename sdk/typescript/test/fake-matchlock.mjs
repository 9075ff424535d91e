#!/usr/bin/env node
// A scripted stand-in for the `matchlock` binary, for the SDK's unit tests.
//
//   fake-matchlock rpc            line-delimited JSON-RPC on stdin/stdout
//   fake-matchlock rm ID          logs to $FAKE_CLI_LOG
//   fake-matchlock volume ...     create NAME --size MB --json | ls --json | rm NAME
//
// Every line received and sent by `rpc` is appended to $FAKE_RECORD (JSONL,
// {dir:"in"|"out"|"hook-request"|"hook-reply", msg}) so the conformance test
// can check both directions against contract/rpc.json.
// $FAKE_MODE: "" (normal) or "hang-close" (never answers close, never exits).
import { appendFileSync } from "node:fs";
import { connect } from "node:net";
import { createInterface } from "node:readline";

const [, , sub, ...args] = process.argv;
const record = (dir, msg) => {
  if (process.env.FAKE_RECORD) appendFileSync(process.env.FAKE_RECORD, `${JSON.stringify({ pid: process.pid, dir, msg })}\n`);
};
const cliLog = (line) => {
  if (process.env.FAKE_CLI_LOG) appendFileSync(process.env.FAKE_CLI_LOG, `${line}\n`);
};
const b64 = (data) => Buffer.from(data).toString("base64");
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

if (sub === "rm") {
  cliLog(`rm ${args.join(" ")}`);
  if (args[0] === "vm-missing") {
    process.stderr.write("Error: vm-missing not found\n");
    process.exit(1);
  }
  console.log(`Removed ${args[0]}`);
  process.exit(0);
}

if (sub === "volume") {
  cliLog(`volume ${args.join(" ")}`);
  const [verb, name] = args;
  if (verb === "create") {
    const size = Number(args[args.indexOf("--size") + 1]);
    if (!args.includes("--json")) {
      console.log(`Created volume ${name} (${size} MB)\nPath: /var/lib/matchlock/volumes/${name}.ext4`);
    } else {
      console.log(JSON.stringify({ name, size: size * 1024 * 1024, path: `/var/lib/matchlock/volumes/${name}.ext4` }));
    }
    process.exit(0);
  }
  if (verb === "ls") {
    console.log(
      JSON.stringify([
        { name: "data", size: 1048576 * 64, used: 4096, path: "/var/lib/matchlock/volumes/data.ext4" },
        { name: "cache", size: "10.0 MB", path: "/var/lib/matchlock/volumes/cache.ext4" },
      ]),
    );
    process.exit(0);
  }
  if (verb === "rm") {
    if (name === "busy") {
      process.stderr.write("Error: volume busy is in use\n");
      process.exit(1);
    }
    console.log(`Removed volume ${name}`);
    process.exit(0);
  }
  process.exit(2);
}

if (sub !== "rpc") {
  process.stderr.write(`fake-matchlock: unknown command ${sub}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// rpc
// ---------------------------------------------------------------------------
const mode = process.env.FAKE_MODE ?? "";
const send = (msg) => {
  record("out", msg);
  process.stdout.write(`${JSON.stringify(msg)}\n`);
};
const answer = (id, result) => send({ jsonrpc: "2.0", id, result });
const fail = (id, code, message) => send({ jsonrpc: "2.0", id, error: { code, message } });
const notify = (method, params) => send({ jsonrpc: "2.0", method, params });

let config = null;
const files = new Map();
let allowed = [];
const hookReplies = [];
const waiting = new Map(); // request id -> {kind, ...}

function hookCall(socketPath, request) {
  return new Promise((resolve) => {
    record("hook-request", request);
    const socket = connect(socketPath);
    let data = "";
    socket.on("connect", () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on("data", (chunk) => (data += chunk));
    socket.on("end", () => {
      let reply;
      try {
        reply = JSON.parse(data.trim());
      } catch {
        reply = { unparseable: data };
      }
      record("hook-reply", reply);
      resolve(reply);
    });
    socket.on("error", (e) => resolve({ socketError: e.message }));
  });
}

async function runHooks(network) {
  const socket = network?.interception?.callback_socket;
  if (!socket) return;
  for (const rule of network.interception.rules ?? []) {
    if (!rule.callback_id) continue;
    const phase = rule.phase || "before";
    const request = {
      callback_id: rule.callback_id,
      phase,
      host: "api.example.test",
      method: "POST",
      path: "/v1/chat",
      query: { model: "x" },
      request_headers: { Authorization: ["Bearer SANDBOX_SECRET_0"], Accept: ["text/event-stream"] },
    };
    if (phase === "after") {
      request.status_code = 200;
      request.response_headers = { "Content-Type": ["text/event-stream"] };
      request.is_sse = true;
    }
    hookReplies.push({ callback_id: rule.callback_id, reply: await hookCall(socket, request) });
  }
  // An id the SDK never registered: it must answer with an error.
  hookReplies.push({
    callback_id: "network_hook_99",
    reply: await hookCall(socket, { callback_id: "network_hook_99", phase: "before", host: "h", method: "GET", path: "/" }),
  });
}

const commandText = (command) => (Array.isArray(command) ? command.join(" ") : String(command));

function startInteractive(msg, kind) {
  const id = msg.id;
  const state = { kind, ready: false, stdin: [], violation: null, resizes: [], params: msg.params };
  waiting.set(id, state);
  setTimeout(() => {
    if (!waiting.has(id)) return;
    state.ready = true;
    notify(`${kind}.ready`, { id });
    if (commandText(msg.params.command) === "early-exit") {
      waiting.delete(id);
      answer(id, { exit_code: 0, duration_ms: 1 });
    }
  }, 60);
}

function finishInteractive(id) {
  const state = waiting.get(id);
  if (!state) return;
  waiting.delete(id);
  if (state.violation) {
    fail(id, -32602, state.violation);
    return;
  }
  const input = Buffer.concat(state.stdin);
  if (state.kind === "exec_pipe") {
    for (let i = 0; i < input.length; i += 1000) notify("exec_pipe.stdout", { id, data: b64(input.subarray(i, i + 1000)) });
    notify("exec_pipe.stderr", { id, data: b64(`read ${input.length} bytes\n`) });
  } else {
    notify("exec_tty.stdout", { id, data: b64(input) });
    const { rows, cols } = state.params;
    notify("exec_tty.stdout", { id, data: b64(`\r\nrows=${rows} cols=${cols} resizes=${JSON.stringify(state.resizes)}\r\n`) });
  }
  answer(id, { exit_code: 0, duration_ms: 5 });
}

function onStdinMessage(msg, kind) {
  const target = msg.params?.id;
  const state = waiting.get(target);
  if (!state || state.kind !== kind) return; // never answered
  if (!state.ready) state.violation = `${msg.method} arrived before ${kind}.ready`;
  if (msg.method.endsWith(".stdin")) state.stdin.push(Buffer.from(msg.params.data, "base64"));
  else if (msg.method.endsWith(".resize")) state.resizes.push([msg.params.rows, msg.params.cols]);
  else if (msg.method.endsWith(".stdin_eof")) finishInteractive(target);
}

async function handle(msg) {
  const { id, method, params = {} } = msg;
  switch (method) {
    case "create": {
      if (params.image === "bad-image") return fail(id, -32000, "pull bad-image: not found");
      config = params;
      await runHooks(params.network);
      return answer(id, { id: "vm-0123abcd" });
    }
    case "exec": {
      const cmd = commandText(params.command);
      if (cmd === "echo hello") return answer(id, { exit_code: 0, stdout: b64("hello\n"), stderr: "", duration_ms: 3 });
      if (cmd === "binary")
        return answer(id, { exit_code: 0, stdout: b64(ALL_BYTES), stderr: b64(Buffer.from(ALL_BYTES).reverse()), duration_ms: 1 });
      if (cmd === "fail") return answer(id, { exit_code: 3, stdout: "", stderr: b64("boom\n"), duration_ms: 1 });
      if (cmd === "error-exec") return fail(id, -32001, "exec failed: no such file");
      if (cmd === "config") return answer(id, { exit_code: 0, stdout: b64(JSON.stringify(config)), stderr: "", duration_ms: 0 });
      if (cmd === "hook-replies")
        return answer(id, { exit_code: 0, stdout: b64(JSON.stringify(hookReplies)), stderr: "", duration_ms: 0 });
      if (cmd === "whoami") return answer(id, { exit_code: 0, stdout: b64(`${params.user ?? "root"} in ${params.working_dir ?? "/"}\n`), stderr: "", duration_ms: 0 });
      if (cmd === "sleep") {
        waiting.set(id, { kind: "sleep" });
        return;
      }
      if (cmd === "die") {
        process.stderr.write("fatal: guest agent vanished\n");
        process.exit(7);
      }
      if (cmd === "events") {
        notify("event", { type: "file", timestamp: Date.now(), file: { op: "WRITE", path: "/workspace/out/a.txt", size: 5, mode: 420, uid: 0, gid: 0 } });
        notify("event", { type: "file", timestamp: Date.now(), file: { op: "read", path: "/etc/passwd", size: 10 } });
        notify("event", {
          type: "network",
          timestamp: Date.now(),
          network: { method: "GET", url: "http://x.test/", host: "x.test", status_code: 403, request_bytes: 10, response_bytes: 20, duration_ms: 4, blocked: true, block_reason: "not allowed" },
        });
        return answer(id, { exit_code: 0, stdout: "", stderr: "", duration_ms: 0 });
      }
      return answer(id, { exit_code: 0, stdout: b64(cmd), stderr: "", duration_ms: 0 });
    }
    case "exec_stream": {
      const cmd = commandText(params.command);
      notify("exec_stream.stdout", { id: id + 1000, data: b64("stray\n") }); // not ours: must be ignored
      if (cmd === "binary") {
        notify("exec_stream.stdout", { id, data: b64(ALL_BYTES.subarray(0, 100)) });
        notify("exec_stream.stdout", { id, data: b64(ALL_BYTES.subarray(100)) });
      } else {
        notify("exec_stream.stdout", { id, data: b64("one\n") });
        notify("exec_stream.stderr", { id, data: b64("err\n") });
        notify("exec_stream.stdout", { id, data: b64("two\n") });
      }
      return answer(id, { exit_code: cmd === "exit 2" ? 2 : 0, duration_ms: 2 });
    }
    case "exec_pipe":
      return startInteractive(msg, "exec_pipe");
    case "exec_tty":
      return startInteractive(msg, "exec_tty");
    case "exec_pipe.stdin":
    case "exec_pipe.stdin_eof":
      return onStdinMessage(msg, "exec_pipe");
    case "exec_tty.stdin":
    case "exec_tty.stdin_eof":
    case "exec_tty.resize":
      return onStdinMessage(msg, "exec_tty");
    case "write_file":
      files.set(params.path, { content: Buffer.from(params.content, "base64"), mode: params.mode ?? 420 });
      return answer(id, {});
    case "read_file": {
      const file = files.get(params.path);
      if (!file) return fail(id, -32002, `open ${params.path}: no such file or directory`);
      return answer(id, { content: b64(file.content) });
    }
    case "list_files": {
      const prefix = params.path.endsWith("/") ? params.path : `${params.path}/`;
      const entries = [...files.entries()]
        .filter(([p]) => p.startsWith(prefix) && !p.slice(prefix.length).includes("/"))
        .map(([p, f]) => ({ name: p.slice(prefix.length), size: f.content.length, mode: f.mode, mod_time: "2024-01-02T03:04:05Z", is_dir: false }));
      entries.push({ name: "sub", size: 4096, mode: 2147484141, mod_time: "2024-01-02T03:04:05Z", is_dir: true });
      return answer(id, { files: entries });
    }
    case "log":
      return answer(id, { content: b64("entrypoint started\nlistening\n") });
    case "log_stream": {
      let n = 0;
      const timer = setInterval(() => notify("log_stream.data", { id, data: b64(`line ${++n}\n`) }), 20);
      waiting.set(id, { kind: "log_stream", timer });
      return;
    }
    case "allow_list_add": {
      const added = params.hosts.filter((h) => !allowed.includes(h));
      allowed.push(...added);
      return answer(id, { added, allowed_hosts: allowed });
    }
    case "allow_list_delete": {
      const removed = params.hosts.filter((h) => allowed.includes(h));
      allowed = allowed.filter((h) => !removed.includes(h));
      return answer(id, { removed, allowed_hosts: allowed });
    }
    case "port_forward": {
      const address = params.addresses?.[0] ?? "127.0.0.1";
      return answer(id, {
        bindings: params.forwards.map((f) => ({ address, local_port: f.local_port, remote_port: f.remote_port })),
      });
    }
    case "cancel": {
      const target = waiting.get(params.id);
      if (target) {
        waiting.delete(params.id);
        if (target.timer) clearInterval(target.timer);
        fail(params.id, -32003, "cancelled");
      }
      return answer(id, { cancelled: Boolean(target) });
    }
    case "close": {
      if (mode === "hang-close") return; // never answers, never exits
      answer(id, {});
      process.exitCode = 0;
      setImmediate(() => process.exit(0));
      return;
    }
    default:
      return fail(id, -32601, `method not found: ${method}`);
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    send({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "parse error" } });
    return;
  }
  record("in", msg);
  Promise.resolve(handle(msg)).catch((e) => fail(msg.id, -32603, String(e)));
});
rl.on("close", () => {
  if (mode === "hang-close") {
    setInterval(() => undefined, 1000); // stays up until killed
    return;
  }
  process.exit(0);
});
