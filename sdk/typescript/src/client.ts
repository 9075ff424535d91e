/**
 * `Client`: one `matchlock rpc` process, holding one sandbox VM.
 *
 *   const client = new Client();
 *   await client.launch(new Sandbox("busybox"));
 *   const r = await client.exec("echo hello");
 *   await client.close();
 *   await client.remove();
 */
import { cloneCreateOptions, type Sandbox } from "./builder.js";
import { buildCreateParams, validateCreateOptions } from "./create-params.js";
import { MatchlockError } from "./errors.js";
import { ExecAPI } from "./exec.js";
import { NetworkHookServer, compileNetworkInterception } from "./network-hooks.js";
import { RpcTransport, type NotificationHandler } from "./transport.js";
import type {
  AllowListUpdate,
  BinaryLike,
  Config,
  CreateOptions,
  ExecInteractiveOptions,
  ExecInteractiveResult,
  ExecOptions,
  ExecPipeOptions,
  ExecPipeResult,
  ExecResult,
  ExecStreamOptions,
  ExecStreamResult,
  FileInfo,
  LogStreamOptions,
  PortForward,
  PortForwardBinding,
  RequestOptions,
  SandboxEvent,
  SandboxEventListener,
  StreamReader,
  StreamWriter,
  VolumeInfo,
} from "./types.js";
import {
  asNumber,
  asObject,
  asString,
  asStringList,
  defaultConfig,
  deliver,
  fromBase64,
  toBuffer,
  toError,
  type JSONObject,
  type JSONValue,
} from "./util.js";
import { LocalVFSHooks, compileVFS } from "./vfs-hooks.js";

export { defaultConfig } from "./util.js";

const DEFAULT_VOLUME_SIZE_MB = 10240;

function parsePort(raw: string, role: "local" | "remote"): number {
  const text = raw.trim();
  if (!text) {
    throw new MatchlockError(`invalid port-forward spec: empty ${role} port`);
  }
  if (!/^\d+$/.test(text)) {
    throw new MatchlockError(`invalid port value ${JSON.stringify(text)}`);
  }
  const port = Number.parseInt(text, 10);
  if (port < 1 || port > 65535) {
    throw new MatchlockError(`invalid port value ${port}: must be in range 1-65535`);
  }
  return port;
}

/** `"8080"` or `"18080:8080"` (`[LOCAL:]REMOTE`). */
export function parsePortForward(spec: string): PortForward {
  const text = spec.trim();
  if (!text) {
    throw new MatchlockError("invalid port-forward spec: empty spec");
  }
  const parts = text.split(":");
  if (parts.length === 1) {
    const port = parsePort(parts[0], "remote");
    return { localPort: port, remotePort: port };
  }
  if (parts.length === 2) {
    return { localPort: parsePort(parts[0], "local"), remotePort: parsePort(parts[1], "remote") };
  }
  throw new MatchlockError(`invalid port-forward spec: ${JSON.stringify(text)} (expected [LOCAL_PORT:]REMOTE_PORT)`);
}

function normalizeHosts(hosts: string[]): string[] {
  const out: string[] = [];
  for (const entry of hosts) {
    for (const token of entry.split(",")) {
      const host = token.trim();
      if (host && !out.includes(host)) out.push(host);
    }
  }
  if (out.length === 0) {
    throw new MatchlockError("at least one host is required");
  }
  return out;
}

function volumeFrom(value: JSONValue, fallbackName = "", fallbackSizeMb?: number): VolumeInfo {
  const data = asObject(value);
  const name = asString(data.name).trim() || fallbackName;
  const path = asString(data.path).trim();
  if (!name || !path) {
    throw new MatchlockError("failed to parse volume output: missing name or path");
  }
  const info: VolumeInfo = { name, size: "", path };
  if (typeof data.size === "string") {
    info.size = data.size.trim();
  } else if (typeof data.size === "number") {
    info.sizeBytes = data.size;
    info.size = `${(data.size / (1024 * 1024)).toFixed(1)} MB`;
  } else if (fallbackSizeMb !== undefined) {
    info.size = `${fallbackSizeMb.toFixed(1)} MB`;
  }
  return info;
}

export class Client {
  private readonly config: Required<Config>;
  private readonly transport: RpcTransport;
  private readonly execAPI: ExecAPI;
  private readonly hookServer = new NetworkHookServer();
  private readonly vfsHooks = new LocalVFSHooks();
  private readonly eventListeners = new Set<SandboxEventListener>();

  private vmIDValue = "";
  private lastVMID = "";
  private closed = false;
  private closing = false;

  constructor(config: Config = {}) {
    this.config = defaultConfig(config);
    this.transport = new RpcTransport(
      this.config,
      (method, params) => this.onNotification(method, params),
      () => void this.hookServer.stop(),
    );
    this.execAPI = new ExecAPI(
      (method, params, options, onNotification) => this.sendRequest(method, params, options, onNotification),
      (method, params) => this.transport.notify(method, params),
    );
  }

  /** The VM id returned by `create` ("" before). */
  get vmId(): string {
    return this.vmIDValue;
  }

  /** Starts `matchlock rpc` (done implicitly by `launch` / `create`). */
  async start(): Promise<void> {
    if (this.closed) {
      throw new MatchlockError("client is closed");
    }
    this.transport.start();
  }

  // -- lifecycle -------------------------------------------------------------

  /** Creates the VM described by `sandbox`, starting its image entrypoint too. */
  async launch(sandbox: Sandbox): Promise<string> {
    const options = sandbox.options();
    options.launchEntrypoint = true;
    return this.create(options);
  }

  /** Creates the VM; returns its id. Port forwards in `opts` are applied after. */
  async create(opts: CreateOptions = {}): Promise<string> {
    if (this.closed) {
      throw new MatchlockError("client is closed");
    }
    const options = cloneCreateOptions(opts);
    validateCreateOptions(options);
    const vfs = compileVFS(options.vfsInterception);
    const network = compileNetworkInterception(options.networkInterception);

    await this.hookServer.stop();
    let wireNetwork = network.wire;
    if (network.callbacks.size > 0) {
      const socketPath = await this.hookServer.start(network.callbacks);
      wireNetwork = { ...(wireNetwork ?? {}), callback_socket: socketPath };
    }
    const params = buildCreateParams(options, wireNetwork, vfs.wire);

    this.transport.start();
    let id = "";
    try {
      id = asString(asObject(await this.sendRequest("create", params)).id);
      if (!id) {
        throw new MatchlockError("invalid create response: missing id");
      }
    } catch (error) {
      await this.hookServer.stop();
      throw error;
    }
    this.vmIDValue = id;
    this.lastVMID = id;
    this.vfsHooks.install(vfs);
    if ((options.portForwards ?? []).length > 0) {
      await this.portForwardMappings(options.portForwardAddresses, options.portForwards ?? []);
    }
    return id;
  }

  /**
   * Sends `close {timeout_seconds}` (default 2 s), closes stdin and waits for
   * the process, killing it if it outlives the timeout.
   */
  async close(timeoutSeconds = 0): Promise<void> {
    if (this.closed || this.closing) {
      return;
    }
    this.closing = true;
    this.lastVMID = this.vmIDValue || this.lastVMID;
    this.vfsHooks.clear();
    try {
      await this.transport.close(timeoutSeconds);
    } finally {
      await this.hookServer.stop();
      this.closed = true;
      this.closing = false;
    }
  }

  /** Runs `matchlock rm <id>` for the VM this client created. */
  async remove(): Promise<void> {
    const id = this.vmIDValue || this.lastVMID;
    if (!id) {
      return;
    }
    try {
      await this.transport.runCLI(["rm", id]);
    } catch (error) {
      throw new MatchlockError(`matchlock rm ${id}: ${toError(error).message}`);
    }
  }

  // -- exec ------------------------------------------------------------------

  /** Runs a command and returns its buffered output. */
  exec(command: string | string[], options: ExecOptions = {}): Promise<ExecResult> {
    return this.execAPI.exec(command, options);
  }

  execWithDir(command: string, workingDir = "", options: RequestOptions = {}): Promise<ExecResult> {
    return this.execAPI.exec(command, { ...options, workingDir });
  }

  /** Runs a command, delivering stdout/stderr chunks to the writers as they come. */
  execStream(command: string | string[], options: ExecStreamOptions = {}): Promise<ExecStreamResult> {
    return this.execAPI.execStream(command, options);
  }

  execStreamWithDir(
    command: string,
    workingDir = "",
    stdout?: StreamWriter,
    stderr?: StreamWriter,
    options: RequestOptions = {},
  ): Promise<ExecStreamResult> {
    return this.execAPI.execStream(command, { ...options, workingDir, stdout, stderr });
  }

  /** Runs a command with stdin fed from `options.stdin` (EOF at its end, or at once without one). */
  execPipe(command: string | string[], options: ExecPipeOptions = {}): Promise<ExecPipeResult> {
    return this.execAPI.execPipe(command, options);
  }

  /** @deprecated Use execPipe with ExecPipeOptions. */
  execPipeWithDir(
    command: string,
    workingDir = "",
    stdin?: StreamReader,
    stdout?: StreamWriter,
    stderr?: StreamWriter,
    options: RequestOptions = {},
  ): Promise<ExecPipeResult> {
    return this.execAPI.execPipe(command, { ...options, workingDir, stdin, stdout, stderr });
  }

  /** Runs a command on a PTY (`exec_tty`); `resize` yields `[rows, cols]`. */
  execInteractive(command: string | string[], options: ExecInteractiveOptions = {}): Promise<ExecInteractiveResult> {
    return this.execAPI.execInteractive(command, options);
  }

  // -- files -----------------------------------------------------------------

  /** Writes a file with mode 0644 (parents are created). */
  async writeFile(path: string, content: BinaryLike, options: RequestOptions = {}): Promise<void> {
    await this.writeFileMode(path, content, 0o644, options);
  }

  async writeFileMode(path: string, content: BinaryLike, mode: number, options: RequestOptions = {}): Promise<void> {
    const original = toBuffer(content);
    await this.vfsHooks.checkAction("write", path, original.length, mode);
    const data = await this.vfsHooks.mutateWrite(path, original, mode);
    await this.sendRequest("write_file", { path, content: data.toString("base64"), mode: Math.trunc(mode) }, options);
  }

  async readFile(path: string, options: RequestOptions = {}): Promise<Buffer> {
    await this.vfsHooks.checkAction("read", path, 0, 0);
    return fromBase64(asObject(await this.sendRequest("read_file", { path }, options)).content);
  }

  async listFiles(path: string, options: RequestOptions = {}): Promise<FileInfo[]> {
    await this.vfsHooks.checkAction("readdir", path, 0, 0);
    const result = asObject(await this.sendRequest("list_files", { path }, options));
    const files = Array.isArray(result.files) ? result.files : [];
    return files.map((entry) => {
      const file = asObject(entry);
      const info: FileInfo = {
        name: asString(file.name),
        size: asNumber(file.size),
        mode: asNumber(file.mode),
        isDir: file.is_dir === true,
      };
      if (typeof file.mod_time === "string") info.modTime = file.mod_time;
      return info;
    });
  }

  // -- network ---------------------------------------------------------------

  /** Forwards host ports to guest ports, each spec `[LOCAL:]REMOTE`, on 127.0.0.1. */
  async portForward(...specs: string[]): Promise<PortForwardBinding[]> {
    return this.portForwardWithAddresses(undefined, ...specs);
  }

  async portForwardWithAddresses(addresses: string[] | undefined, ...specs: string[]): Promise<PortForwardBinding[]> {
    return this.portForwardMappings(addresses, specs.map(parsePortForward));
  }

  /** Adds hosts (comma lists allowed) to the running sandbox's allow-list. */
  async allowListAdd(...hosts: string[]): Promise<AllowListUpdate> {
    const r = asObject(await this.sendRequest("allow_list_add", { hosts: normalizeHosts(hosts) }));
    return { added: asStringList(r.added), removed: [], allowedHosts: asStringList(r.allowed_hosts) };
  }

  /** Removes hosts from the running sandbox's allow-list. */
  async allowListDelete(...hosts: string[]): Promise<AllowListUpdate> {
    const r = asObject(await this.sendRequest("allow_list_delete", { hosts: normalizeHosts(hosts) }));
    return { added: [], removed: asStringList(r.removed), allowedHosts: asStringList(r.allowed_hosts) };
  }

  /**
   * Listens to `event` notifications (network and file events). Returns a
   * function that removes the listener.
   */
  onEvent(listener: SandboxEventListener): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  // -- logs ------------------------------------------------------------------

  /** The sandbox log (the entrypoint's output when launched with one); the server sends it base64, as the original does. */
  async log(options: RequestOptions = {}): Promise<string> {
    return fromBase64(asString(asObject(await this.sendRequest("log", undefined, options)).content)).toString("utf8");
  }

  /** Follows the log until `options.signal` aborts (or the request is cancelled). */
  async logStream(options: LogStreamOptions = {}): Promise<void> {
    await this.sendRequest("log_stream", undefined, options, (method, params) => {
      if (method === "log_stream.data") deliver(options.stdout, fromBase64(params.data));
    });
  }

  // -- volumes (CLI helpers) -------------------------------------------------

  async volumeCreate(name: string, sizeMb = DEFAULT_VOLUME_SIZE_MB): Promise<VolumeInfo> {
    const volume = name.trim();
    if (!volume) throw new MatchlockError("volume name is required");
    if (!Number.isFinite(sizeMb) || sizeMb <= 0) throw new MatchlockError("volume size must be > 0");
    let stdout: string;
    try {
      ({ stdout } = await this.transport.runCLI(["volume", "create", volume, "--size", String(sizeMb), "--json"]));
    } catch (error) {
      throw new MatchlockError(`matchlock volume create ${volume}: ${toError(error).message}`);
    }
    let parsed: JSONValue;
    try {
      parsed = JSON.parse(stdout) as JSONValue;
    } catch (error) {
      throw new MatchlockError(`failed to parse volume create output: ${toError(error).message}`);
    }
    return volumeFrom(parsed, volume, sizeMb);
  }

  async volumeList(): Promise<VolumeInfo[]> {
    let stdout: string;
    try {
      ({ stdout } = await this.transport.runCLI(["volume", "ls", "--json"]));
    } catch (error) {
      throw new MatchlockError(`matchlock volume ls: ${toError(error).message}`);
    }
    let parsed: JSONValue;
    try {
      parsed = JSON.parse(stdout) as JSONValue;
    } catch (error) {
      throw new MatchlockError(`failed to parse volume list output: ${toError(error).message}`);
    }
    if (!Array.isArray(parsed)) {
      throw new MatchlockError("failed to parse volume list output: expected array");
    }
    return parsed.map((entry) => volumeFrom(entry));
  }

  async volumeRemove(name: string): Promise<void> {
    const volume = name.trim();
    if (!volume) throw new MatchlockError("volume name is required");
    try {
      await this.transport.runCLI(["volume", "rm", volume]);
    } catch (error) {
      throw new MatchlockError(`matchlock volume rm ${volume}: ${toError(error).message}`);
    }
  }

  // -- internals -------------------------------------------------------------

  private async portForwardMappings(
    addresses: string[] | undefined,
    forwards: PortForward[],
  ): Promise<PortForwardBinding[]> {
    if (forwards.length === 0) {
      return [];
    }
    const result = asObject(
      await this.sendRequest("port_forward", {
        forwards: forwards.map((f) => ({ local_port: f.localPort, remote_port: f.remotePort })),
        addresses: addresses && addresses.length > 0 ? [...addresses] : ["127.0.0.1"],
      }),
    );
    const bindings = Array.isArray(result.bindings) ? result.bindings : [];
    return bindings.map((entry) => {
      const b = asObject(entry);
      return { address: asString(b.address), localPort: asNumber(b.local_port), remotePort: asNumber(b.remote_port) };
    });
  }

  private async sendRequest(
    method: string,
    params?: JSONObject,
    options: RequestOptions = {},
    onNotification?: NotificationHandler,
  ): Promise<JSONValue> {
    if (this.closed) {
      throw new MatchlockError("client is closed");
    }
    if (!this.transport.started) {
      this.transport.start();
    } else if (!this.transport.isRunning()) {
      throw new MatchlockError("Matchlock process not running");
    }
    return this.transport.request(method, params, options, onNotification);
  }

  private onNotification(method: string, params: JSONObject): void {
    if (method !== "event") {
      return;
    }
    this.vfsHooks.onEvent(params, this);
    if (this.eventListeners.size === 0) {
      return;
    }
    const network = asObject(params.network);
    const file = asObject(params.file);
    const event: SandboxEvent = { type: asString(params.type), timestamp: asNumber(params.timestamp) };
    if (params.network !== undefined) {
      event.network = {
        method: asString(network.method),
        url: asString(network.url),
        host: asString(network.host),
        statusCode: asNumber(network.status_code),
        requestBytes: asNumber(network.request_bytes),
        responseBytes: asNumber(network.response_bytes),
        durationMs: asNumber(network.duration_ms),
        blocked: network.blocked === true,
      };
      if (typeof network.block_reason === "string") event.network.blockReason = network.block_reason;
    }
    if (params.file !== undefined) {
      event.file = { op: asString(file.op), path: asString(file.path) };
      for (const key of ["size", "mode", "uid", "gid"] as const) {
        if (typeof file[key] === "number") event.file[key] = file[key] as number;
      }
    }
    for (const listener of this.eventListeners) {
      try {
        listener(event);
      } catch {
        // Listener errors are the caller's; they must not stop the reader.
      }
    }
  }
}
