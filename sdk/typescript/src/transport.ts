/**
 * The `matchlock rpc` child process and the JSON-RPC 2.0 framing over its
 * stdin/stdout: one JSON object per line.
 *
 * - One reader (the stdout `data` listener) splits lines on raw bytes, so a
 *   multi-byte character split across chunks is never corrupted, and
 *   dispatches responses by numeric id and notifications by `params.id`.
 * - Writes go through one promise chain (the write lock), so lines never
 *   interleave.
 * - Every message sent is a request with a fresh numeric id, including the
 *   unanswered stdin / EOF / resize messages and `cancel`, as the original
 *   clients do.
 */
import { spawn, execFile, type ChildProcessWithoutNullStreams } from "node:child_process";
import { MatchlockError, RPCError } from "./errors.js";
import type { Config, RequestOptions } from "./types.js";
import {
  DEFAULT_CLOSE_TIMEOUT_SECONDS,
  MAX_LINE_BYTES,
  asNumber,
  asObject,
  asString,
  type JSONObject,
  type JSONValue,
} from "./util.js";

export type NotificationHandler = (method: string, params: JSONObject) => void;

interface Pending {
  method: string;
  resolve: (value: JSONValue) => void;
  reject: (reason: unknown) => void;
  onNotification?: NotificationHandler;
}

const STDERR_TAIL_BYTES = 4096;

export class RpcTransport {
  private child: ChildProcessWithoutNullStreams | undefined;
  private exited: Promise<void> = Promise.resolve();
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private writeChain: Promise<void> = Promise.resolve();
  private readChunks: Buffer[] = [];
  private stderrTail = "";
  private alive = false;

  constructor(
    private readonly config: Required<Config>,
    private readonly onServerNotification: NotificationHandler,
    private readonly onExit: () => void,
  ) {}

  /** True once `start()` spawned a process (even if it has exited since). */
  get started(): boolean {
    return this.child !== undefined;
  }

  isRunning(): boolean {
    const child = this.child;
    return this.alive && child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts `matchlock rpc` unless it already runs. */
  start(): void {
    if (this.isRunning()) {
      return;
    }
    const command = this.config.useSudo ? "sudo" : this.config.binaryPath;
    const args = this.config.useSudo ? [this.config.binaryPath, "rpc"] : ["rpc"];
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    this.alive = true;
    this.readChunks = [];
    this.stderrTail = "";

    child.stdout.on("data", (chunk: Buffer) => this.onStdout(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      // Drained so the child never blocks on a full pipe; the tail explains crashes.
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_BYTES);
    });
    child.stdin.on("error", () => undefined);

    let settle: () => void = () => undefined;
    this.exited = new Promise<void>((resolve) => (settle = resolve));
    let done = false;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      if (this.child === child) this.alive = false;
      this.onChildGone(child, error);
      settle();
    };
    child.on("close", () => finish());
    child.on("error", (error) => {
      // Spawn failures (ENOENT, EACCES) never produce `close` with a pid.
      if (child.pid === undefined) finish(error);
    });
  }

  /**
   * Sends a request and resolves with its `result`. Notifications whose
   * `params.id` is this request's id go to `onNotification` while it runs.
   * Aborting `options.signal` or passing `options.timeoutMs` sends
   * `cancel {id}` and rejects at once.
   */
  async request(
    method: string,
    params?: JSONObject,
    options: RequestOptions = {},
    onNotification?: NotificationHandler,
  ): Promise<JSONValue> {
    const id = ++this.nextId;
    let resolve!: (value: JSONValue) => void;
    let reject!: (reason: unknown) => void;
    const result = new Promise<JSONValue>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.pending.set(id, { method, resolve, reject, onNotification });

    let timer: NodeJS.Timeout | undefined;
    const signal = options.signal;
    const onAbort = (): void => {
      if (!this.pending.has(id)) return;
      this.pending.delete(id);
      this.sendCancel(id);
      const reason: unknown = signal?.reason;
      reject(reason instanceof Error ? reason : new MatchlockError(`request ${method} was aborted`));
    };
    try {
      if (signal?.aborted) {
        onAbort();
      } else {
        signal?.addEventListener("abort", onAbort, { once: true });
        if ((options.timeoutMs ?? 0) > 0) {
          timer = setTimeout(() => {
            if (!this.pending.has(id)) return;
            this.pending.delete(id);
            this.sendCancel(id);
            reject(new MatchlockError(`request ${method} (id=${id}) timed out after ${options.timeoutMs}ms`));
          }, options.timeoutMs);
        }
        const message: JSONObject = { jsonrpc: "2.0", method, id };
        if (params !== undefined) message.params = params;
        this.write(message).catch((error: unknown) => {
          if (this.pending.delete(id)) reject(error);
        });
      }
      return await result;
    } finally {
      this.pending.delete(id);
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Sends a message the server never answers (stdin, EOF, resize). */
  async notify(method: string, params: JSONObject): Promise<void> {
    await this.write({ jsonrpc: "2.0", method, params, id: ++this.nextId });
  }

  /**
   * Graceful shutdown: `close {timeout_seconds}` (waiting up to t+5 s for the
   * answer), then EOF on stdin, then up to t s for the process to exit, then
   * SIGKILL.
   */
  async close(timeoutSeconds = 0): Promise<void> {
    if (!this.isRunning()) {
      return;
    }
    const seconds = timeoutSeconds > 0 ? timeoutSeconds : DEFAULT_CLOSE_TIMEOUT_SECONDS;
    try {
      await this.request("close", { timeout_seconds: seconds }, { timeoutMs: (seconds + 5) * 1000 });
    } catch {
      // Best effort: the process is stopped below either way.
    }
    this.child?.stdin.end();
    await this.waitOrKill(seconds * 1000);
  }

  /** Kills the process at once (no `close`). */
  async kill(): Promise<void> {
    await this.waitOrKill(0);
  }

  /** Runs `<binaryPath> ...args` (no sudo) and returns its output. */
  runCLI(args: string[]): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      execFile(this.config.binaryPath, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) {
          const detail = String(stderr ?? "").trim();
          reject(new Error(detail ? `${error.message.split("\n")[0]}: ${detail}` : error.message));
          return;
        }
        resolve({ stdout: String(stdout), stderr: String(stderr) });
      });
    });
  }

  private async waitOrKill(timeoutMs: number): Promise<void> {
    const child = this.child;
    if (!child || !this.isRunning()) {
      await this.exited;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    if (timer) clearTimeout(timer);
    if (timedOut && this.isRunning()) {
      child.kill("SIGKILL");
    }
    await this.exited;
  }

  private sendCancel(targetId: number): void {
    if (!this.isRunning()) return;
    // The answer ({cancelled}) comes back under an id nobody waits for: ignored.
    this.write({ jsonrpc: "2.0", method: "cancel", params: { id: targetId }, id: ++this.nextId }).catch(
      () => undefined,
    );
  }

  private write(message: JSONObject): Promise<void> {
    const line = `${JSON.stringify(message)}\n`;
    const step = this.writeChain.then(async () => {
      if (Buffer.byteLength(line) > MAX_LINE_BYTES) {
        throw new MatchlockError(
          `request ${asString(message.method)} is larger than the ${MAX_LINE_BYTES}-byte line limit`,
        );
      }
      const child = this.child;
      if (!child || !this.isRunning() || !child.stdin.writable) {
        throw new MatchlockError("Matchlock process not running");
      }
      await new Promise<void>((resolve, reject) => {
        child.stdin.write(line, (error) => (error ? reject(error) : resolve()));
      });
    });
    this.writeChain = step.catch(() => undefined);
    return step;
  }

  private onStdout(chunk: Buffer): void {
    let start = 0;
    let newline = chunk.indexOf(0x0a, start);
    while (newline !== -1) {
      this.readChunks.push(chunk.subarray(start, newline));
      const line = Buffer.concat(this.readChunks).toString("utf8").trim();
      this.readChunks = [];
      if (line) this.dispatch(line);
      start = newline + 1;
      newline = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) {
      this.readChunks.push(chunk.subarray(start));
    }
  }

  private dispatch(line: string): void {
    let message: JSONObject;
    try {
      message = asObject(JSON.parse(line) as JSONValue);
    } catch {
      return; // stdout should carry only JSON; anything else is ignored.
    }
    if (typeof message.id === "number") {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      const error = message.error;
      if (error !== undefined && error !== null) {
        const e = asObject(error);
        waiter.reject(new RPCError(asNumber(e.code, -32603), asString(e.message, "unknown error")));
      } else {
        waiter.resolve(message.result ?? null);
      }
      return;
    }
    const method = asString(message.method);
    if (!method) return;
    const params = asObject(message.params);
    const target = typeof params.id === "number" ? this.pending.get(params.id) : undefined;
    if (target && method !== "event") {
      try {
        target.onNotification?.(method, params);
      } catch {
        // A handler bug must not stop the reader.
      }
      return;
    }
    try {
      this.onServerNotification(method, params);
    } catch {
      // Same.
    }
  }

  private onChildGone(child: ChildProcessWithoutNullStreams, error?: Error): void {
    if (this.child !== child) return;
    const how = error
      ? `: ${error.message}`
      : child.exitCode !== null
        ? ` (exit code ${child.exitCode})`
        : child.signalCode
          ? ` (signal ${child.signalCode})`
          : "";
    const tail = this.stderrTail.trim();
    const message = `Matchlock process closed unexpectedly${how}${tail ? `: ${tail.split("\n").slice(-3).join(" | ")}` : ""}`;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const waiter of waiting) {
      waiter.reject(new MatchlockError(message));
    }
    this.onExit();
  }
}

