/**
 * Network interception rules for `create`, and the UNIX-socket server that
 * answers the host's callback requests for rules with a local `hook`.
 *
 * Wire protocol (contract/rpc.json HookCallbackRequest / HookCallbackReply):
 * the host opens one connection per invocation, writes one JSON object
 * (newline-terminated), and reads one JSON object back. `{}` means "no
 * change"; `{error}` reports a failed hook (the host then blocks the request).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MatchlockError } from "./errors.js";
import type {
  NetworkHookFunc,
  NetworkHookRequest,
  NetworkHookResult,
  NetworkHookRule,
  NetworkInterceptionConfig,
} from "./types.js";
import { asNumber, asObject, asString, toBuffer, toError, type JSONObject, type JSONValue } from "./util.js";

export interface WireNetworkRule {
  name?: string;
  phase?: string;
  hosts?: string[];
  methods?: string[];
  path?: string;
  action?: string;
  callback_id?: string;
  set_headers?: Record<string, string>;
  delete_headers?: string[];
  set_query?: Record<string, string>;
  delete_query?: string[];
  rewrite_path?: string;
  set_response_headers?: Record<string, string>;
  delete_response_headers?: string[];
  body_replacements?: { find: string; replace?: string }[];
  timeout_ms?: number;
}

export interface WireNetworkInterception {
  rules?: WireNetworkRule[];
  callback_socket?: string;
}

export interface CallbackHook {
  id: string;
  name: string;
  phase: string;
  timeoutMs: number;
  fn: NetworkHookFunc;
}

/** A hook request larger than this is refused (the host sends a few KiB). */
const MAX_CALLBACK_REQUEST_BYTES = 4 * 1024 * 1024;

const nonEmpty = <T>(list: T[] | undefined): list is T[] => Array.isArray(list) && list.length > 0;
const nonEmptyMap = (map: Record<string, string> | undefined): map is Record<string, string> =>
  map !== undefined && Object.keys(map).length > 0;

function ruleToWire(rule: NetworkHookRule): WireNetworkRule {
  const wire: WireNetworkRule = {};
  if (rule.name) wire.name = rule.name;
  if (rule.phase) wire.phase = rule.phase;
  if (nonEmpty(rule.hosts)) wire.hosts = [...rule.hosts];
  if (nonEmpty(rule.methods)) wire.methods = [...rule.methods];
  if (rule.path) wire.path = rule.path;
  // As the original TypeScript client: no `action` unless the caller set one.
  if (rule.action) wire.action = rule.action;
  if (nonEmptyMap(rule.setHeaders)) wire.set_headers = { ...rule.setHeaders };
  if (nonEmpty(rule.deleteHeaders)) wire.delete_headers = [...rule.deleteHeaders];
  if (nonEmptyMap(rule.setQuery)) wire.set_query = { ...rule.setQuery };
  if (nonEmpty(rule.deleteQuery)) wire.delete_query = [...rule.deleteQuery];
  if (rule.rewritePath) wire.rewrite_path = rule.rewritePath;
  if (nonEmptyMap(rule.setResponseHeaders)) wire.set_response_headers = { ...rule.setResponseHeaders };
  if (nonEmpty(rule.deleteResponseHeaders)) wire.delete_response_headers = [...rule.deleteResponseHeaders];
  if (nonEmpty(rule.bodyReplacements)) {
    wire.body_replacements = rule.bodyReplacements.map((b) =>
      b.replace === undefined ? { find: b.find } : { find: b.find, replace: b.replace },
    );
  }
  if ((rule.timeoutMs ?? 0) > 0) wire.timeout_ms = Math.trunc(rule.timeoutMs ?? 0);
  return wire;
}

/**
 * Turns the caller's config into wire rules and the local callbacks. Each rule
 * with a `hook` is named `network_hook_<index+1>`, the index running over the
 * whole rule list (static rules included), as the original clients do.
 */
export function compileNetworkInterception(
  config: NetworkInterceptionConfig | undefined,
): { wire: WireNetworkInterception | undefined; callbacks: Map<string, CallbackHook> } {
  const callbacks = new Map<string, CallbackHook>();
  if (!config) {
    return { wire: undefined, callbacks };
  }
  const wire: WireNetworkInterception = {};
  const rules = config.rules ?? [];
  if (rules.length > 0) {
    wire.rules = rules.map((rule, index) => {
      const out = ruleToWire(rule);
      if (rule.hook) {
        const action = (rule.action ?? "").trim().toLowerCase();
        if (action && action !== "allow") {
          throw new MatchlockError(
            `invalid network hook ${JSON.stringify(rule.name ?? "")}: callback hooks cannot set action=${JSON.stringify(rule.action)}`,
          );
        }
        const id = `network_hook_${index + 1}`;
        out.callback_id = id;
        callbacks.set(id, {
          id,
          name: rule.name ?? "",
          phase: (rule.phase ?? "").trim().toLowerCase(),
          timeoutMs: rule.timeoutMs ?? 0,
          fn: rule.hook,
        });
      }
      return out;
    });
  }
  return { wire, callbacks };
}

function stringMap(value: JSONValue | undefined): Record<string, string> | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = Array.isArray(item) ? String(item[0] ?? "") : String(item ?? "");
  }
  return out;
}

function stringListMap(value: JSONValue | undefined): Record<string, string[]> | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const out: Record<string, string[]> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = Array.isArray(item) ? item.map((x) => String(x ?? "")) : [String(item ?? "")];
  }
  return out;
}

/** The reply object for a hook's result (`{}` when it changes nothing). */
export function hookResultToWire(result: NetworkHookResult | null | undefined): JSONObject {
  const reply: JSONObject = {};
  if (!result) return reply;
  if (result.action) reply.action = result.action;
  if (result.request) {
    const req: JSONObject = {};
    if (result.request.headers !== undefined) req.headers = result.request.headers as unknown as JSONValue;
    if (result.request.query !== undefined) req.query = result.request.query as unknown as JSONValue;
    if (result.request.path) req.path = result.request.path;
    if (Object.keys(req).length > 0) reply.request = req;
  }
  if (result.response) {
    const resp: JSONObject = {};
    if (result.response.headers !== undefined) resp.headers = result.response.headers as unknown as JSONValue;
    if (nonEmpty(result.response.bodyReplacements)) {
      resp.body_replacements = result.response.bodyReplacements.map((b): JSONObject =>
        b.replace === undefined ? { find: b.find } : { find: b.find, replace: b.replace },
      );
    }
    if (result.response.setBody !== undefined && result.response.setBody !== null) {
      resp.set_body_base64 = toBuffer(result.response.setBody).toString("base64");
    }
    if (Object.keys(resp).length > 0) reply.response = resp;
  }
  return reply;
}

export class NetworkHookServer {
  private server: Server | undefined;
  private dir = "";
  private callbacks = new Map<string, CallbackHook>();
  private sockets = new Set<Socket>();

  get socketPath(): string {
    return this.dir ? join(this.dir, "hook.sock") : "";
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Listens on a fresh private socket and returns its path. */
  async start(callbacks: Map<string, CallbackHook>): Promise<string> {
    await this.stop();
    const dir = await mkdtemp(join(tmpdir(), "matchlock-hook-"));
    const path = join(dir, "hook.sock");
    const server = createServer((socket) => this.serve(socket));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      server.close();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw new MatchlockError(`network hook socket: ${toError(error).message}`);
    }
    this.server = server;
    this.dir = dir;
    this.callbacks = new Map(callbacks);
    return path;
  }

  async stop(): Promise<void> {
    const server = this.server;
    const dir = this.dir;
    this.server = undefined;
    this.dir = "";
    this.callbacks = new Map();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    const chunks: Buffer[] = [];
    let size = 0;
    let handled = false;
    const handle = (): void => {
      if (handled) return;
      handled = true;
      socket.off("data", onData);
      const raw = Buffer.concat(chunks).toString("utf8");
      const newline = raw.indexOf("\n");
      void this.answer(socket, newline === -1 ? raw : raw.slice(0, newline));
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (chunk.includes(0x0a) || size > MAX_CALLBACK_REQUEST_BYTES) handle();
    };
    socket.on("data", onData);
    socket.on("end", handle);
    socket.on("error", () => undefined);
    socket.on("close", () => this.sockets.delete(socket));
  }

  private async answer(socket: Socket, line: string): Promise<void> {
    const send = (reply: JSONObject): void => {
      if (!socket.destroyed) socket.end(`${JSON.stringify(reply)}\n`);
    };
    let payload: JSONObject;
    try {
      payload = asObject(JSON.parse(line) as JSONValue);
    } catch (error) {
      send({ error: `invalid hook request: ${toError(error).message}` });
      return;
    }
    const hook = this.callbacks.get(asString(payload.callback_id).trim());
    if (!hook) {
      send({ error: "network hook callback not found" });
      return;
    }
    const phase = asString(payload.phase).trim().toLowerCase();
    if (hook.phase && hook.phase !== phase) {
      send({ error: "network hook phase mismatch" });
      return;
    }
    const request: NetworkHookRequest = {
      phase: phase as NetworkHookRequest["phase"],
      host: asString(payload.host),
      method: asString(payload.method),
      path: asString(payload.path),
      query: stringMap(payload.query),
      requestHeaders: stringListMap(payload.request_headers),
      statusCode: asNumber(payload.status_code),
      responseHeaders: stringListMap(payload.response_headers),
      isSSE: payload.is_sse === true,
    };
    try {
      send(hookResultToWire(await invoke(hook, request)));
    } catch (error) {
      send({ error: toError(error).message || "network hook failed" });
    }
  }
}

async function invoke(hook: CallbackHook, request: NetworkHookRequest): Promise<NetworkHookResult | null | undefined> {
  if (hook.timeoutMs <= 0) {
    return hook.fn(request);
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(() => hook.fn(request)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("network hook callback timed out")), hook.timeoutMs);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
