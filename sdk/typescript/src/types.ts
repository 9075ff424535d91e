/**
 * Public types of the Matchlock TypeScript SDK.
 *
 * Names follow the original `matchlock-sdk` package so existing scripts keep
 * compiling; the comments describe how this implementation treats each field.
 */
import type { Client } from "./client.js";

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

export const VFS_HOOK_PHASE_BEFORE = "before";
export const VFS_HOOK_PHASE_AFTER = "after";
export const NETWORK_HOOK_PHASE_BEFORE = "before";
export const NETWORK_HOOK_PHASE_AFTER = "after";

export const VFS_HOOK_ACTION_ALLOW = "allow";
export const VFS_HOOK_ACTION_BLOCK = "block";
export const NETWORK_HOOK_ACTION_ALLOW = "allow";
export const NETWORK_HOOK_ACTION_BLOCK = "block";
export const NETWORK_HOOK_ACTION_MUTATE = "mutate";

export const VFS_HOOK_OP_STAT = "stat";
export const VFS_HOOK_OP_READDIR = "readdir";
export const VFS_HOOK_OP_OPEN = "open";
export const VFS_HOOK_OP_CREATE = "create";
export const VFS_HOOK_OP_MKDIR = "mkdir";
export const VFS_HOOK_OP_CHMOD = "chmod";
export const VFS_HOOK_OP_REMOVE = "remove";
export const VFS_HOOK_OP_REMOVE_ALL = "remove_all";
export const VFS_HOOK_OP_RENAME = "rename";
export const VFS_HOOK_OP_SYMLINK = "symlink";
export const VFS_HOOK_OP_READLINK = "readlink";
export const VFS_HOOK_OP_READ = "read";
export const VFS_HOOK_OP_WRITE = "write";
export const VFS_HOOK_OP_CLOSE = "close";
export const VFS_HOOK_OP_SYNC = "sync";
export const VFS_HOOK_OP_TRUNCATE = "truncate";

export type VFSHookPhase = "" | "before" | "after";
export type VFSHookOp =
  | "stat"
  | "readdir"
  | "open"
  | "create"
  | "mkdir"
  | "chmod"
  | "remove"
  | "remove_all"
  | "rename"
  | "symlink"
  | "readlink"
  | "read"
  | "write"
  | "close"
  | "sync"
  | "truncate";
export type VFSHookAction = "allow" | "block" | (string & {});
export type NetworkHookPhase = "" | "before" | "after";
export type NetworkHookAction = "allow" | "block" | "mutate";

// ---------------------------------------------------------------------------
// Client configuration
// ---------------------------------------------------------------------------

export interface Config {
  /** The matchlock executable. Default: `$MATCHLOCK_BIN`, else `matchlock`. */
  binaryPath?: string;
  /** Run `sudo <binaryPath> rpc` instead of `<binaryPath> rpc`. */
  useSudo?: boolean;
}

// ---------------------------------------------------------------------------
// Sandbox options
// ---------------------------------------------------------------------------

export interface HostIPMapping {
  host: string;
  ip: string;
}

export interface MountConfig {
  /** `memory`, `host_fs` or `overlay` (default `memory`). */
  type?: string;
  hostPath?: string;
  readonly?: boolean;
}

export interface Secret {
  name: string;
  value: string;
  /** A fixed placeholder instead of a generated `SANDBOX_SECRET_…` one. */
  placeholder?: string;
  hosts?: string[];
}

export interface ImageConfig {
  user?: string;
  workingDir?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
}

export interface PortForward {
  localPort: number;
  remotePort: number;
}

export interface PortForwardBinding {
  address: string;
  localPort: number;
  remotePort: number;
}

/** An ext4 disk attached to the VM (`--disk`). */
export interface ExtraDisk {
  hostPath: string;
  guestMount: string;
  readonly?: boolean;
}

// ---------------------------------------------------------------------------
// VFS hooks
// ---------------------------------------------------------------------------

export interface VFSHookEvent {
  op: string;
  path: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
}

export interface VFSMutateRequest {
  path: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
}

export interface VFSActionRequest {
  op: string;
  path: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
}

export type BinaryLike = string | Buffer | Uint8Array | ArrayBuffer;

export type VFSHookFunc = (event: VFSHookEvent) => void | Promise<void>;
export type VFSDangerousHookFunc = (client: Client, event: VFSHookEvent) => void | Promise<void>;
export type VFSMutateHookFunc = (
  request: VFSMutateRequest,
) => BinaryLike | null | undefined | Promise<BinaryLike | null | undefined>;
export type VFSActionHookFunc = (request: VFSActionRequest) => VFSHookAction | Promise<VFSHookAction>;

export interface VFSHookRule {
  name?: string;
  phase?: VFSHookPhase;
  ops?: VFSHookOp[];
  /** A glob over the full guest path. */
  path?: string;
  action?: VFSHookAction;
  timeoutMs?: number;
  /** Runs in this process after a matching file event from the host (phase must be `after`). */
  hook?: VFSHookFunc;
  /** Like `hook`, but receives the client and may call it (runs concurrently). */
  dangerousHook?: VFSDangerousHookFunc;
  /** Rewrites content written through `writeFile` (phase `before`). */
  mutateHook?: VFSMutateHookFunc;
  /** Allows or blocks SDK-side file calls (phase `before`). */
  actionHook?: VFSActionHookFunc;
}

export interface VFSInterceptionConfig {
  emitEvents?: boolean;
  rules?: VFSHookRule[];
}

// ---------------------------------------------------------------------------
// Network interception
// ---------------------------------------------------------------------------

export interface NetworkBodyTransform {
  find: string;
  replace?: string;
}

/** What a callback hook is told about one HTTP exchange. */
export interface NetworkHookRequest {
  phase: NetworkHookPhase;
  host: string;
  method: string;
  path: string;
  query?: Record<string, string>;
  requestHeaders?: Record<string, string[]>;
  /** 0 in the `before` phase. */
  statusCode: number;
  responseHeaders?: Record<string, string[]>;
  isSSE: boolean;
}

export interface NetworkHookRequestMutation {
  /** Replaces the whole request header map (Host excepted). */
  headers?: Record<string, string[]>;
  /** Replaces the whole query. */
  query?: Record<string, string>;
  path?: string;
}

export interface NetworkHookResponseMutation {
  headers?: Record<string, string[]>;
  bodyReplacements?: NetworkBodyTransform[];
  /** Replaces the response body. */
  setBody?: BinaryLike | null;
}

export interface NetworkHookResult {
  action?: NetworkHookAction;
  request?: NetworkHookRequestMutation;
  response?: NetworkHookResponseMutation;
}

export type NetworkHookFunc = (
  request: NetworkHookRequest,
) => NetworkHookResult | null | undefined | Promise<NetworkHookResult | null | undefined>;

export interface NetworkHookRule {
  name?: string;
  phase?: NetworkHookPhase;
  hosts?: string[];
  methods?: string[];
  path?: string;
  action?: NetworkHookAction;
  setHeaders?: Record<string, string>;
  deleteHeaders?: string[];
  setQuery?: Record<string, string>;
  deleteQuery?: string[];
  rewritePath?: string;
  setResponseHeaders?: Record<string, string>;
  deleteResponseHeaders?: string[];
  bodyReplacements?: NetworkBodyTransform[];
  timeoutMs?: number;
  /** Decide on the host, in this process, through the callback socket. */
  hook?: NetworkHookFunc;
}

export interface NetworkInterceptionConfig {
  rules?: NetworkHookRule[];
}

// ---------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------

export interface CreateOptions {
  image?: string;
  privileged?: boolean;
  cpus?: number;
  memoryMb?: number;
  diskSizeMb?: number;
  /** Sent as `resources.timeout_seconds`; the server accepts and ignores it. */
  timeoutSeconds?: number;
  allowedHosts?: string[];
  addHosts?: HostIPMapping[];
  blockPrivateIPs?: boolean;
  blockPrivateIPsSet?: boolean;
  noNetwork?: boolean;
  forceInterception?: boolean;
  networkInterception?: NetworkInterceptionConfig;
  mounts?: Record<string, MountConfig>;
  env?: Record<string, string>;
  secrets?: Secret[];
  workspace?: string;
  vfsInterception?: VFSInterceptionConfig;
  dnsServers?: string[];
  hostname?: string;
  networkMtu?: number;
  portForwards?: PortForward[];
  portForwardAddresses?: string[];
  imageConfig?: ImageConfig;
  launchEntrypoint?: boolean;
  /** Ours: extra ext4 disks (`extra_disks`). */
  extraDisks?: ExtraDisk[];
  /** Ours: raw TCP rules `HOST:PORT` (`network.allow_tcp`). */
  allowTcp?: string[];
}

// ---------------------------------------------------------------------------
// exec and files
// ---------------------------------------------------------------------------

export interface ExecResult {
  exitCode: number;
  /** stdout decoded as UTF-8 (as the original SDK returns it). */
  stdout: string;
  stderr: string;
  /** The exact bytes of stdout (binary safe). */
  stdoutBytes: Buffer;
  /** The exact bytes of stderr (binary safe). */
  stderrBytes: Buffer;
  durationMs: number;
}

export interface ExecStreamResult {
  exitCode: number;
  durationMs: number;
}

export interface ExecPipeResult {
  exitCode: number;
  durationMs: number;
}

export interface ExecInteractiveResult {
  exitCode: number;
  durationMs: number;
}

export interface FileInfo {
  name: string;
  size: number;
  mode: number;
  isDir: boolean;
  /** RFC 3339 modification time, when the server sends one. */
  modTime?: string;
}

export interface VolumeInfo {
  name: string;
  /** Human-readable size, e.g. `"10240.0 MB"`. */
  size: string;
  path: string;
  /** The size in bytes, when the CLI reports a number. */
  sizeBytes?: number;
}

export interface AllowListUpdate {
  added: string[];
  removed: string[];
  allowedHosts: string[];
}

export type StreamWriter = NodeJS.WritableStream | ((chunk: Buffer) => void | Promise<void>);
export type StreamReader = NodeJS.ReadableStream | AsyncIterable<BinaryLike> | Iterable<BinaryLike>;

/** `[rows, cols]`. */
export type TTYSize = [number, number];

export interface RequestOptions {
  /** Aborting sends `cancel` for the request and rejects it with the signal's reason. */
  signal?: AbortSignal;
  /** Cancels the request (and rejects) after this many milliseconds. */
  timeoutMs?: number;
}

export interface ExecOptions extends RequestOptions {
  workingDir?: string;
  /** Run as this user (`uid`, `uid:gid` or a name). Sent only when set. */
  user?: string;
}

export interface ExecStreamOptions extends ExecOptions {
  stdout?: StreamWriter;
  stderr?: StreamWriter;
}

export interface ExecPipeOptions extends ExecOptions {
  stdin?: StreamReader;
  stdout?: StreamWriter;
  stderr?: StreamWriter;
}

export interface ExecInteractiveOptions extends ExecOptions {
  stdin?: StreamReader;
  stdout?: StreamWriter;
  rows?: number;
  cols?: number;
  resize?: AsyncIterable<TTYSize> | Iterable<TTYSize>;
}

export interface LogStreamOptions extends RequestOptions {
  stdout?: StreamWriter;
}

// ---------------------------------------------------------------------------
// Events (`event` notifications)
// ---------------------------------------------------------------------------

export interface NetworkEventDetail {
  method?: string;
  url?: string;
  host?: string;
  statusCode?: number;
  requestBytes?: number;
  responseBytes?: number;
  durationMs?: number;
  blocked?: boolean;
  blockReason?: string;
}

export interface FileEventDetail {
  op: string;
  path: string;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface SandboxEvent {
  type: "network" | "file" | (string & {});
  /** Unix milliseconds. */
  timestamp: number;
  network?: NetworkEventDetail;
  file?: FileEventDetail;
}

export type SandboxEventListener = (event: SandboxEvent) => void;
