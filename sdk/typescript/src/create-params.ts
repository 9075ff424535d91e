/**
 * Builds the `create` request from `CreateOptions`, with the same shape the
 * original TypeScript client sends (see docs/COMPATIBILITY.md "What the
 * original SDK clients send"): `resources` always complete, `network` only
 * when some network option is set, `action` omitted on hook rules.
 */
import { MatchlockError } from "./errors.js";
import type { WireNetworkInterception } from "./network-hooks.js";
import type { CreateOptions } from "./types.js";
import {
  DEFAULT_CPUS,
  DEFAULT_DISK_SIZE_MB,
  DEFAULT_MEMORY_MB,
  DEFAULT_TIMEOUT_SECONDS,
  validateAddHost,
  type JSONObject,
  type JSONValue,
} from "./util.js";
import type { WireVFSInterception } from "./vfs-hooks.js";

const has = (list: unknown[] | undefined): boolean => (list?.length ?? 0) > 0;

export function validateCreateOptions(options: CreateOptions): void {
  if (!options.image) {
    throw new MatchlockError("image is required (e.g., alpine:latest)");
  }
  if ((options.networkMtu ?? 0) < 0) {
    throw new MatchlockError("network mtu must be > 0");
  }
  if (
    options.noNetwork &&
    (has(options.allowedHosts) ||
      has(options.secrets) ||
      has(options.allowTcp) ||
      options.forceInterception === true ||
      options.networkInterception !== undefined)
  ) {
    throw new MatchlockError(
      "no network cannot be combined with allowed hosts, secrets, forced interception, or network interception rules",
    );
  }
  for (const mapping of options.addHosts ?? []) {
    validateAddHost(mapping);
  }
  for (const disk of options.extraDisks ?? []) {
    if (!disk.hostPath || !disk.guestMount) {
      throw new MatchlockError("extra disk needs hostPath and guestMount");
    }
  }
}

function networkParams(opts: CreateOptions, interception: WireNetworkInterception | undefined): JSONObject | undefined {
  const blockOverride = opts.blockPrivateIPsSet === true || opts.blockPrivateIPs === true;
  const blockValue = opts.blockPrivateIPsSet === true ? opts.blockPrivateIPs === true : true;
  const addHosts = (opts.addHosts ?? []).map((m) => ({ host: m.host, ip: m.ip.trim() }));
  const wanted =
    has(opts.allowedHosts) ||
    addHosts.length > 0 ||
    has(opts.secrets) ||
    has(opts.dnsServers) ||
    Boolean(opts.hostname) ||
    (opts.networkMtu ?? 0) > 0 ||
    opts.noNetwork === true ||
    blockOverride ||
    opts.forceInterception === true ||
    interception !== undefined ||
    has(opts.allowTcp);
  if (!wanted) {
    return undefined;
  }

  const network: JSONObject = {};
  if (opts.noNetwork === true) {
    network.no_network = true;
  } else {
    network.allowed_hosts = [...(opts.allowedHosts ?? [])];
    network.block_private_ips = blockValue;
    if (opts.forceInterception === true || interception !== undefined) {
      network.intercept = true;
    }
    if (interception !== undefined) {
      network.interception = interception as unknown as JSONValue;
    }
  }
  if (addHosts.length > 0) {
    network.add_hosts = addHosts;
  }
  if (opts.noNetwork !== true) {
    if (has(opts.secrets)) {
      const secrets: JSONObject = {};
      for (const secret of opts.secrets ?? []) {
        const entry: JSONObject = { value: secret.value, hosts: [...(secret.hosts ?? [])] };
        if (secret.placeholder) entry.placeholder = secret.placeholder;
        secrets[secret.name] = entry;
      }
      network.secrets = secrets;
    }
    if (has(opts.allowTcp)) {
      network.allow_tcp = [...(opts.allowTcp ?? [])];
    }
  }
  if (has(opts.dnsServers)) {
    network.dns_servers = [...(opts.dnsServers ?? [])];
  }
  if (opts.hostname) {
    network.hostname = opts.hostname;
  }
  if (opts.noNetwork !== true && (opts.networkMtu ?? 0) > 0) {
    network.mtu = Math.trunc(opts.networkMtu ?? 0);
  }
  return network;
}

function vfsParams(opts: CreateOptions, interception: WireVFSInterception | undefined): JSONObject | undefined {
  const mounts = Object.entries(opts.mounts ?? {});
  if (mounts.length === 0 && !opts.workspace && interception === undefined) {
    return undefined;
  }
  const vfs: JSONObject = {};
  if (opts.workspace) {
    vfs.workspace = opts.workspace;
  }
  if (mounts.length > 0) {
    const wireMounts: JSONObject = {};
    for (const [guestPath, mount] of mounts) {
      const entry: JSONObject = { type: mount.type ?? "memory" };
      if (mount.hostPath) entry.host_path = mount.hostPath;
      if (mount.readonly) entry.readonly = true;
      wireMounts[guestPath] = entry;
    }
    vfs.mounts = wireMounts;
  }
  if (interception !== undefined) {
    vfs.interception = interception as unknown as JSONValue;
  }
  return vfs;
}

export function buildCreateParams(
  opts: CreateOptions,
  networkInterception: WireNetworkInterception | undefined,
  vfsInterception: WireVFSInterception | undefined,
): JSONObject {
  const params: JSONObject = {
    image: opts.image ?? "",
    resources: {
      cpus: opts.cpus || DEFAULT_CPUS,
      memory_mb: opts.memoryMb || DEFAULT_MEMORY_MB,
      disk_size_mb: opts.diskSizeMb || DEFAULT_DISK_SIZE_MB,
      timeout_seconds: opts.timeoutSeconds || DEFAULT_TIMEOUT_SECONDS,
    },
  };
  if (opts.privileged) {
    params.privileged = true;
  }
  const network = networkParams(opts, networkInterception);
  if (network) {
    params.network = network;
  }
  const vfs = vfsParams(opts, vfsInterception);
  if (vfs) {
    params.vfs = vfs;
  }
  if (opts.env && Object.keys(opts.env).length > 0) {
    params.env = { ...opts.env };
  }
  if (opts.imageConfig) {
    const ic = opts.imageConfig;
    const imageConfig: JSONObject = {};
    if (ic.user) imageConfig.user = ic.user;
    if (ic.workingDir) imageConfig.working_dir = ic.workingDir;
    if (ic.entrypoint) imageConfig.entrypoint = [...ic.entrypoint];
    if (ic.cmd) imageConfig.cmd = [...ic.cmd];
    if (ic.env) imageConfig.env = { ...ic.env };
    params.image_config = imageConfig;
  }
  if (opts.launchEntrypoint) {
    params.launch_entrypoint = true;
  }
  if (has(opts.extraDisks)) {
    params.extra_disks = (opts.extraDisks ?? []).map((d) => {
      const disk: JSONObject = { host_path: d.hostPath, guest_mount: d.guestMount };
      if (d.readonly) disk.readonly = true;
      return disk;
    });
  }
  return params;
}
