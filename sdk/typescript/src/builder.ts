/**
 * `Sandbox`: a fluent description of a VM to launch with `Client.launch`.
 * Every method records an option and returns the builder; `options()` hands
 * out an independent copy, so a builder can be reused.
 */
import type {
  CreateOptions,
  ImageConfig,
  MountConfig,
  NetworkInterceptionConfig,
  VFSInterceptionConfig,
} from "./types.js";

function copyList<T>(list: T[] | undefined, copyItem: (item: T) => T = (x) => x): T[] | undefined {
  return list === undefined ? undefined : list.map(copyItem);
}

function copyMap<T>(map: Record<string, T> | undefined): Record<string, T> | undefined {
  return map === undefined ? undefined : { ...map };
}

/** A deep copy of create options (callbacks are shared, data is not). */
export function cloneCreateOptions(opts: CreateOptions): CreateOptions {
  const out: CreateOptions = { ...opts };
  out.allowedHosts = copyList(opts.allowedHosts);
  out.addHosts = copyList(opts.addHosts, (m) => ({ ...m }));
  out.dnsServers = copyList(opts.dnsServers);
  out.portForwards = copyList(opts.portForwards, (p) => ({ ...p }));
  out.portForwardAddresses = copyList(opts.portForwardAddresses);
  out.secrets = copyList(opts.secrets, (s) => ({ ...s, hosts: copyList(s.hosts) }));
  out.env = copyMap(opts.env);
  out.extraDisks = copyList(opts.extraDisks, (d) => ({ ...d }));
  out.allowTcp = copyList(opts.allowTcp);
  if (opts.mounts) {
    out.mounts = {};
    for (const [guestPath, mount] of Object.entries(opts.mounts)) {
      out.mounts[guestPath] = { ...mount };
    }
  }
  if (opts.imageConfig) {
    out.imageConfig = {
      ...opts.imageConfig,
      entrypoint: copyList(opts.imageConfig.entrypoint),
      cmd: copyList(opts.imageConfig.cmd),
      env: copyMap(opts.imageConfig.env),
    };
  }
  if (opts.vfsInterception) {
    out.vfsInterception = {
      emitEvents: opts.vfsInterception.emitEvents,
      rules: copyList(opts.vfsInterception.rules, (r) => ({ ...r, ops: copyList(r.ops) })),
    };
  }
  if (opts.networkInterception) {
    out.networkInterception = {
      rules: copyList(opts.networkInterception.rules, (r) => ({
        ...r,
        hosts: copyList(r.hosts),
        methods: copyList(r.methods),
        setHeaders: copyMap(r.setHeaders),
        deleteHeaders: copyList(r.deleteHeaders),
        setQuery: copyMap(r.setQuery),
        deleteQuery: copyList(r.deleteQuery),
        setResponseHeaders: copyMap(r.setResponseHeaders),
        deleteResponseHeaders: copyList(r.deleteResponseHeaders),
        bodyReplacements: copyList(r.bodyReplacements, (b) => ({ ...b })),
      })),
    };
  }
  return out;
}

export class Sandbox {
  private readonly opts: CreateOptions;

  constructor(image: string) {
    this.opts = { image };
  }

  // -- machine ---------------------------------------------------------------

  withPrivileged(): Sandbox {
    this.opts.privileged = true;
    return this;
  }

  withCPUs(cpus: number): Sandbox {
    this.opts.cpus = cpus;
    return this;
  }

  withMemory(mb: number): Sandbox {
    this.opts.memoryMb = mb;
    return this;
  }

  withDiskSize(mb: number): Sandbox {
    this.opts.diskSizeMb = mb;
    return this;
  }

  /** Recorded as `resources.timeout_seconds` (accepted and ignored by the server). */
  withTimeout(seconds: number): Sandbox {
    this.opts.timeoutSeconds = seconds;
    return this;
  }

  /** Ours: attach an ext4 disk image (or `@volume`) at `guestMount`. */
  withDisk(hostPath: string, guestMount: string, readonly = false): Sandbox {
    (this.opts.extraDisks ??= []).push({ hostPath, guestMount, readonly });
    return this;
  }

  // -- environment and image config -------------------------------------------

  withEnv(name: string, value: string): Sandbox {
    (this.opts.env ??= {})[name] = value;
    return this;
  }

  withEnvMap(env: Record<string, string>): Sandbox {
    Object.assign((this.opts.env ??= {}), env);
    return this;
  }

  withUser(user: string): Sandbox {
    (this.opts.imageConfig ??= {}).user = user;
    return this;
  }

  withEntrypoint(...entrypoint: string[]): Sandbox {
    (this.opts.imageConfig ??= {}).entrypoint = [...entrypoint];
    return this;
  }

  /** Merges the non-empty fields of `config` over what was set before. */
  withImageConfig(config: ImageConfig | undefined | null): Sandbox {
    if (!config) {
      return this;
    }
    const target = (this.opts.imageConfig ??= {});
    if (config.user) target.user = config.user;
    if (config.workingDir) target.workingDir = config.workingDir;
    if (config.entrypoint && config.entrypoint.length > 0) target.entrypoint = [...config.entrypoint];
    if (config.cmd && config.cmd.length > 0) target.cmd = [...config.cmd];
    if (config.env && Object.keys(config.env).length > 0) target.env = { ...config.env };
    return this;
  }

  // -- network ---------------------------------------------------------------

  allowHost(...hosts: string[]): Sandbox {
    (this.opts.allowedHosts ??= []).push(...hosts);
    return this;
  }

  /** Ours: allow raw TCP to `HOST:PORT` (`--allow-tcp`). */
  allowTcp(...rules: string[]): Sandbox {
    (this.opts.allowTcp ??= []).push(...rules);
    return this;
  }

  addHost(host: string, ip: string): Sandbox {
    (this.opts.addHosts ??= []).push({ host, ip });
    return this;
  }

  blockPrivateIPs(): Sandbox {
    return this.withBlockPrivateIPs(true);
  }

  allowPrivateIPs(): Sandbox {
    return this.withBlockPrivateIPs(false);
  }

  withBlockPrivateIPs(enabled: boolean): Sandbox {
    this.opts.blockPrivateIPs = enabled;
    this.opts.blockPrivateIPsSet = true;
    return this;
  }

  unsetBlockPrivateIPs(): Sandbox {
    this.opts.blockPrivateIPs = false;
    this.opts.blockPrivateIPsSet = false;
    return this;
  }

  addSecret(name: string, value: string, ...hosts: string[]): Sandbox {
    (this.opts.secrets ??= []).push({ name, value, hosts });
    return this;
  }

  addSecretWithPlaceholder(name: string, value: string, placeholder: string, ...hosts: string[]): Sandbox {
    (this.opts.secrets ??= []).push({ name, value, placeholder, hosts });
    return this;
  }

  withDNSServers(...servers: string[]): Sandbox {
    (this.opts.dnsServers ??= []).push(...servers);
    return this;
  }

  withHostname(hostname: string): Sandbox {
    this.opts.hostname = hostname;
    return this;
  }

  withNetworkMTU(mtu: number): Sandbox {
    this.opts.networkMtu = mtu;
    return this;
  }

  withNoNetwork(): Sandbox {
    this.opts.noNetwork = true;
    return this;
  }

  /** Turns interception on (even with no rules) and installs `config`'s rules. */
  withNetworkInterception(config?: NetworkInterceptionConfig): Sandbox {
    this.opts.forceInterception = true;
    this.opts.networkInterception = config;
    return this;
  }

  withPortForward(localPort: number, remotePort: number): Sandbox {
    (this.opts.portForwards ??= []).push({ localPort, remotePort });
    return this;
  }

  withPortForwardAddresses(...addresses: string[]): Sandbox {
    (this.opts.portForwardAddresses ??= []).push(...addresses);
    return this;
  }

  // -- files -----------------------------------------------------------------

  withWorkspace(path: string): Sandbox {
    this.opts.workspace = path;
    return this;
  }

  withVFSInterception(config: VFSInterceptionConfig): Sandbox {
    this.opts.vfsInterception = config;
    return this;
  }

  mount(guestPath: string, config: MountConfig): Sandbox {
    (this.opts.mounts ??= {})[guestPath] = { ...config };
    return this;
  }

  mountHostDir(guestPath: string, hostPath: string): Sandbox {
    return this.mount(guestPath, { type: "host_fs", hostPath });
  }

  mountHostDirReadonly(guestPath: string, hostPath: string): Sandbox {
    return this.mount(guestPath, { type: "host_fs", hostPath, readonly: true });
  }

  mountMemory(guestPath: string): Sandbox {
    return this.mount(guestPath, { type: "memory" });
  }

  mountOverlay(guestPath: string, hostPath: string): Sandbox {
    return this.mount(guestPath, { type: "overlay", hostPath });
  }

  /** A copy of the recorded options. */
  options(): CreateOptions {
    return cloneCreateOptions(this.opts);
  }
}

export function createSandbox(image: string): Sandbox {
  return new Sandbox(image);
}
