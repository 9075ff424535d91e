/**
 * The exec family: `exec` (buffered), `exec_stream` (output as
 * notifications), `exec_pipe` (stdin/stdout/stderr pipes) and `exec_tty`
 * (a PTY). For pipe and TTY the SDK sends no stdin, EOF or resize before the
 * server's `*.ready` notification for that request.
 */
import type {
  BinaryLike,
  ExecInteractiveOptions,
  ExecInteractiveResult,
  ExecOptions,
  ExecPipeOptions,
  ExecPipeResult,
  ExecResult,
  ExecStreamOptions,
  ExecStreamResult,
  RequestOptions,
  StreamReader,
  TTYSize,
} from "./types.js";
import type { NotificationHandler } from "./transport.js";
import { asNumber, asObject, deliver, fromBase64, toBuffer, type JSONObject, type JSONValue } from "./util.js";

export type SendRequest = (
  method: string,
  params?: JSONObject,
  options?: RequestOptions,
  onNotification?: NotificationHandler,
) => Promise<JSONValue>;
export type SendNotify = (method: string, params: JSONObject) => Promise<void>;

/** stdin is sent in pieces of at most this many bytes (before base64). */
export const STDIN_CHUNK_BYTES = 64 * 1024;

function execParams(command: string | string[], options: ExecOptions): JSONObject {
  const params: JSONObject = { command: Array.isArray(command) ? [...command] : command };
  if (options.workingDir) params.working_dir = options.workingDir;
  if (options.user) params.user = options.user;
  return params;
}

function exitOf(result: JSONValue): { exitCode: number; durationMs: number } {
  const r = asObject(result);
  return { exitCode: asNumber(r.exit_code), durationMs: asNumber(r.duration_ms) };
}

/** Resolves once; `stopped` also resolves the wait, with `undefined`. */
class Gate {
  private settled = false;
  private open!: (id: number | undefined) => void;
  readonly ready: Promise<number | undefined> = new Promise((resolve) => (this.open = resolve));

  set(id: number | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.open(id);
  }
}

class StopSignal {
  stopped = false;
  private fire!: () => void;
  readonly promise: Promise<void> = new Promise((resolve) => (this.fire = resolve));

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.fire();
  }
}

function toAsyncIterable<T>(source: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> {
  if (typeof (source as AsyncIterable<T>)[Symbol.asyncIterator] === "function") {
    return source as AsyncIterable<T>;
  }
  return (async function* () {
    yield* source as Iterable<T>;
  })();
}

/** The next item, or `undefined` if `stop` fires first. */
async function nextOrStop<T>(iterator: AsyncIterator<T>, stop: StopSignal): Promise<IteratorResult<T> | undefined> {
  const next = iterator.next();
  const winner = await Promise.race([next.then((value) => ({ value })), stop.promise.then(() => undefined)]);
  if (!winner) {
    next.catch(() => undefined);
    return undefined;
  }
  return winner.value;
}

function closeIterator<T>(iterator: AsyncIterator<T>): void {
  if (typeof iterator.return === "function") {
    Promise.resolve(iterator.return()).catch(() => undefined);
  }
}

function chunkToBuffer(chunk: unknown): Buffer | undefined {
  try {
    return toBuffer(chunk as BinaryLike);
  } catch {
    return undefined;
  }
}

export class ExecAPI {
  constructor(
    private readonly send: SendRequest,
    private readonly notify: SendNotify,
  ) {}

  async exec(command: string | string[], options: ExecOptions = {}): Promise<ExecResult> {
    const r = asObject(await this.send("exec", execParams(command, options), options));
    const stdoutBytes = fromBase64(r.stdout);
    const stderrBytes = fromBase64(r.stderr);
    return {
      exitCode: asNumber(r.exit_code),
      stdout: stdoutBytes.toString("utf8"),
      stderr: stderrBytes.toString("utf8"),
      stdoutBytes,
      stderrBytes,
      durationMs: asNumber(r.duration_ms),
    };
  }

  async execStream(command: string | string[], options: ExecStreamOptions = {}): Promise<ExecStreamResult> {
    const onNotification: NotificationHandler = (method, params) => {
      if (method === "exec_stream.stdout") deliver(options.stdout, fromBase64(params.data));
      else if (method === "exec_stream.stderr") deliver(options.stderr, fromBase64(params.data));
    };
    return exitOf(await this.send("exec_stream", execParams(command, options), options, onNotification));
  }

  async execPipe(command: string | string[], options: ExecPipeOptions = {}): Promise<ExecPipeResult> {
    const gate = new Gate();
    const stop = new StopSignal();
    const pump = this.pumpStdin(options.stdin, gate, stop, "exec_pipe.stdin", "exec_pipe.stdin_eof");
    const onNotification: NotificationHandler = (method, params) => {
      if (method === "exec_pipe.ready") gate.set(asNumber(params.id, -1));
      else if (method === "exec_pipe.stdout") deliver(options.stdout, fromBase64(params.data));
      else if (method === "exec_pipe.stderr") deliver(options.stderr, fromBase64(params.data));
    };
    try {
      return exitOf(await this.send("exec_pipe", execParams(command, options), options, onNotification));
    } finally {
      stop.stop();
      gate.set(undefined);
      await pump.catch(() => undefined);
    }
  }

  async execInteractive(
    command: string | string[],
    options: ExecInteractiveOptions = {},
  ): Promise<ExecInteractiveResult> {
    const params = execParams(command, options);
    params.rows = (options.rows ?? 0) > 0 ? Math.trunc(options.rows ?? 24) : 24;
    params.cols = (options.cols ?? 0) > 0 ? Math.trunc(options.cols ?? 80) : 80;
    const gate = new Gate();
    const stop = new StopSignal();
    const pumps = [
      this.pumpStdin(options.stdin, gate, stop, "exec_tty.stdin", "exec_tty.stdin_eof"),
      this.pumpResize(options.resize, gate, stop),
    ];
    const onNotification: NotificationHandler = (method, p) => {
      if (method === "exec_tty.ready") gate.set(asNumber(p.id, -1));
      else if (method === "exec_tty.stdout") deliver(options.stdout, fromBase64(p.data));
    };
    try {
      return exitOf(await this.send("exec_tty", params, options, onNotification));
    } finally {
      stop.stop();
      gate.set(undefined);
      await Promise.all(pumps.map((p) => p.catch(() => undefined)));
    }
  }

  /** Waits for ready, then streams stdin in chunks and finishes with EOF. */
  private async pumpStdin(
    stdin: StreamReader | undefined,
    gate: Gate,
    stop: StopSignal,
    dataMethod: string,
    eofMethod: string,
  ): Promise<void> {
    const id = await gate.ready;
    if (id === undefined || id < 0 || stop.stopped) {
      return;
    }
    if (!stdin) {
      await this.notify(eofMethod, { id });
      return;
    }
    if (typeof stdin === "string" || Buffer.isBuffer(stdin) || stdin instanceof Uint8Array) {
      // A single value is one chunk, not an iterable of characters or bytes.
      stdin = [stdin as BinaryLike];
    }
    const iterator = toAsyncIterable(stdin as AsyncIterable<unknown> | Iterable<unknown>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await nextOrStop(iterator, stop);
        if (!next || stop.stopped) {
          return; // The command finished first: no EOF for a finished request.
        }
        if (next.done) {
          break;
        }
        const data = chunkToBuffer(next.value);
        if (!data) continue;
        for (let offset = 0; offset < data.length; offset += STDIN_CHUNK_BYTES) {
          if (stop.stopped) return;
          const piece = data.subarray(offset, offset + STDIN_CHUNK_BYTES);
          await this.notify(dataMethod, { id, data: piece.toString("base64") });
        }
      }
    } finally {
      closeIterator(iterator);
    }
    if (!stop.stopped) {
      await this.notify(eofMethod, { id });
    }
  }

  private async pumpResize(
    sizes: AsyncIterable<TTYSize> | Iterable<TTYSize> | undefined,
    gate: Gate,
    stop: StopSignal,
  ): Promise<void> {
    if (!sizes) return;
    const id = await gate.ready;
    if (id === undefined || id < 0 || stop.stopped) return;
    const iterator = toAsyncIterable(sizes)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await nextOrStop(iterator, stop);
        if (!next || next.done || stop.stopped) return;
        const size = next.value;
        if (!Array.isArray(size) || size.length < 2) continue;
        const rows = Math.trunc(Number(size[0]));
        const cols = Math.trunc(Number(size[1]));
        if (!(rows > 0 && cols > 0)) continue;
        await this.notify("exec_tty.resize", { id, rows, cols });
      }
    } finally {
      closeIterator(iterator);
    }
  }
}
