package sdk

// SandboxBuilder configures a sandbox fluently:
//
//	sandbox := sdk.New("python:3.12-alpine").
//		WithCPUs(2).
//		WithMemory(1024).
//		AllowHost("api.openai.com").
//		AddSecret("API_KEY", os.Getenv("API_KEY"), "api.openai.com")
//	vmID, err := client.Launch(sandbox)
type SandboxBuilder struct {
	opts CreateOptions
}

// New starts a builder for image.
func New(image string) *SandboxBuilder {
	return &SandboxBuilder{opts: CreateOptions{Image: image}}
}

// WithPrivileged skips in-guest security restrictions.
func (b *SandboxBuilder) WithPrivileged() *SandboxBuilder {
	b.opts.Privileged = true
	return b
}

// WithCPUs sets the number of vCPUs.
func (b *SandboxBuilder) WithCPUs(cpus float64) *SandboxBuilder {
	b.opts.CPUs = cpus
	return b
}

// WithMemory sets the memory in megabytes.
func (b *SandboxBuilder) WithMemory(mb int) *SandboxBuilder {
	b.opts.MemoryMB = mb
	return b
}

// WithDiskSize sets the disk size in megabytes.
func (b *SandboxBuilder) WithDiskSize(mb int) *SandboxBuilder {
	b.opts.DiskSizeMB = mb
	return b
}

// WithTimeout sets resources.timeout_seconds (accepted and ignored by the
// server, as in the original).
func (b *SandboxBuilder) WithTimeout(seconds int) *SandboxBuilder {
	b.opts.TimeoutSeconds = seconds
	return b
}

// WithWorkspace sets the VFS mount point in the guest.
func (b *SandboxBuilder) WithWorkspace(path string) *SandboxBuilder {
	b.opts.Workspace = path
	return b
}

// WithVFSInterception sets the VFS rules.
func (b *SandboxBuilder) WithVFSInterception(cfg *VFSInterceptionConfig) *SandboxBuilder {
	b.opts.VFSInterception = cfg
	return b
}

// WithEnv sets one non-secret environment variable.
func (b *SandboxBuilder) WithEnv(name, value string) *SandboxBuilder {
	if b.opts.Env == nil {
		b.opts.Env = make(map[string]string)
	}
	b.opts.Env[name] = value
	return b
}

// WithEnvMap merges non-secret environment variables.
func (b *SandboxBuilder) WithEnvMap(env map[string]string) *SandboxBuilder {
	for k, v := range env {
		b.WithEnv(k, v)
	}
	return b
}

// AllowHost adds hosts (glob patterns) to the egress allow-list.
func (b *SandboxBuilder) AllowHost(hosts ...string) *SandboxBuilder {
	b.opts.AllowedHosts = append(b.opts.AllowedHosts, hosts...)
	return b
}

// AddHost adds a static host-to-IP entry to the guest's /etc/hosts.
func (b *SandboxBuilder) AddHost(host, ip string) *SandboxBuilder {
	b.opts.AddHosts = append(b.opts.AddHosts, HostIPMapping{Host: host, IP: ip})
	return b
}

// BlockPrivateIPs blocks private IP ranges (the default).
func (b *SandboxBuilder) BlockPrivateIPs() *SandboxBuilder {
	return b.WithBlockPrivateIPs(true)
}

// WithBlockPrivateIPs sets private-range blocking explicitly.
func (b *SandboxBuilder) WithBlockPrivateIPs(enabled bool) *SandboxBuilder {
	b.opts.BlockPrivateIPs = enabled
	b.opts.BlockPrivateIPsSet = true
	return b
}

// AllowPrivateIPs lets the guest reach private IP ranges.
func (b *SandboxBuilder) AllowPrivateIPs() *SandboxBuilder {
	return b.WithBlockPrivateIPs(false)
}

// UnsetBlockPrivateIPs returns to the default (blocked).
func (b *SandboxBuilder) UnsetBlockPrivateIPs() *SandboxBuilder {
	b.opts.BlockPrivateIPs = false
	b.opts.BlockPrivateIPsSet = false
	return b
}

// AddSecret registers a secret: the guest sees a placeholder in $name, and
// the host substitutes value on requests to hosts.
func (b *SandboxBuilder) AddSecret(name, value string, hosts ...string) *SandboxBuilder {
	b.opts.Secrets = append(b.opts.Secrets, Secret{Name: name, Value: value, Hosts: hosts})
	return b
}

// AddSecretWithPlaceholder is AddSecret with a caller-chosen placeholder.
func (b *SandboxBuilder) AddSecretWithPlaceholder(name, value, placeholder string, hosts ...string) *SandboxBuilder {
	b.opts.Secrets = append(b.opts.Secrets, Secret{Name: name, Value: value, Placeholder: placeholder, Hosts: hosts})
	return b
}

// WithDNSServers overrides the guest's DNS servers.
func (b *SandboxBuilder) WithDNSServers(servers ...string) *SandboxBuilder {
	b.opts.DNSServers = append(b.opts.DNSServers, servers...)
	return b
}

// WithHostname sets the guest hostname.
func (b *SandboxBuilder) WithHostname(hostname string) *SandboxBuilder {
	b.opts.Hostname = hostname
	return b
}

// WithNetworkMTU sets the guest MTU.
func (b *SandboxBuilder) WithNetworkMTU(mtu int) *SandboxBuilder {
	b.opts.NetworkMTU = mtu
	return b
}

// WithNoNetwork gives the guest no network at all.
func (b *SandboxBuilder) WithNoNetwork() *SandboxBuilder {
	b.opts.NoNetwork = true
	return b
}

// WithNetworkInterception turns interception on; with a config it also
// installs its rules.
func (b *SandboxBuilder) WithNetworkInterception(cfg ...*NetworkInterceptionConfig) *SandboxBuilder {
	b.opts.ForceInterception = true
	if len(cfg) > 0 {
		b.opts.NetworkInterception = cfg[0]
	}
	return b
}

// WithPortForward forwards localPort on the host to remotePort in the guest
// once the sandbox is up.
func (b *SandboxBuilder) WithPortForward(localPort, remotePort int) *SandboxBuilder {
	b.opts.PortForwards = append(b.opts.PortForwards, PortForward{LocalPort: localPort, RemotePort: remotePort})
	return b
}

// WithPortForwardAddresses sets the host bind addresses for WithPortForward.
func (b *SandboxBuilder) WithPortForwardAddresses(addresses ...string) *SandboxBuilder {
	b.opts.PortForwardAddresses = append(b.opts.PortForwardAddresses, addresses...)
	return b
}

// Mount adds a VFS mount at guestPath.
func (b *SandboxBuilder) Mount(guestPath string, cfg MountConfig) *SandboxBuilder {
	if b.opts.Mounts == nil {
		b.opts.Mounts = make(map[string]MountConfig)
	}
	b.opts.Mounts[guestPath] = cfg
	return b
}

// MountHostDir mounts a host directory read-write.
func (b *SandboxBuilder) MountHostDir(guestPath, hostPath string) *SandboxBuilder {
	return b.Mount(guestPath, MountConfig{Type: MountTypeHostFS, HostPath: hostPath})
}

// MountHostDirReadonly mounts a host directory read-only.
func (b *SandboxBuilder) MountHostDirReadonly(guestPath, hostPath string) *SandboxBuilder {
	return b.Mount(guestPath, MountConfig{Type: MountTypeHostFS, HostPath: hostPath, Readonly: true})
}

// MountMemory mounts an in-memory filesystem.
func (b *SandboxBuilder) MountMemory(guestPath string) *SandboxBuilder {
	return b.Mount(guestPath, MountConfig{Type: MountTypeMemory})
}

// MountOverlay mounts a private copy-on-write view of a host directory.
func (b *SandboxBuilder) MountOverlay(guestPath, hostPath string) *SandboxBuilder {
	return b.Mount(guestPath, MountConfig{Type: MountTypeOverlay, HostPath: hostPath})
}

// WithExtraDisk attaches an ext4 image (e.g. a volume's Path) at guestMount.
func (b *SandboxBuilder) WithExtraDisk(hostPath, guestMount string, readonly bool) *SandboxBuilder {
	b.opts.ExtraDisks = append(b.opts.ExtraDisks, ExtraDisk{HostPath: hostPath, GuestMount: guestMount, ReadOnly: readonly})
	return b
}

// WithUser sets the user commands run as (uid, uid:gid or name).
func (b *SandboxBuilder) WithUser(user string) *SandboxBuilder {
	b.imageConfig().User = user
	return b
}

// WithEntrypoint overrides the image ENTRYPOINT.
func (b *SandboxBuilder) WithEntrypoint(entrypoint ...string) *SandboxBuilder {
	b.imageConfig().Entrypoint = entrypoint
	return b
}

// WithImageConfig merges cfg into the image config: set fields win, zero
// fields leave the current value.
func (b *SandboxBuilder) WithImageConfig(cfg *ImageConfig) *SandboxBuilder {
	if cfg == nil {
		return b
	}
	ic := b.imageConfig()
	if cfg.User != "" {
		ic.User = cfg.User
	}
	if cfg.WorkingDir != "" {
		ic.WorkingDir = cfg.WorkingDir
	}
	if cfg.Entrypoint != nil {
		ic.Entrypoint = cfg.Entrypoint
	}
	if cfg.Cmd != nil {
		ic.Cmd = cfg.Cmd
	}
	if cfg.Env != nil {
		ic.Env = cfg.Env
	}
	return b
}

func (b *SandboxBuilder) imageConfig() *ImageConfig {
	if b.opts.ImageConfig == nil {
		b.opts.ImageConfig = &ImageConfig{}
	}
	return b.opts.ImageConfig
}

// Options returns the CreateOptions built so far (for Client.Create).
func (b *SandboxBuilder) Options() CreateOptions {
	return b.opts
}

// Launch creates the sandbox from b and starts the image's ENTRYPOINT/CMD in
// the background (create with launch_entrypoint).
func (c *Client) Launch(b *SandboxBuilder) (string, error) {
	opts := b.Options()
	opts.LaunchEntrypoint = true
	return c.Create(opts)
}
