package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
)

// Create creates and boots a sandbox from opts and returns its ID. When a
// step after the VM is up fails (e.g. binding a port forward), the ID is
// returned together with the error so the caller can clean up.
func (c *Client) Create(opts CreateOptions) (string, error) {
	params, networkHooks, vfsHooks, err := buildCreateParams(opts)
	if err != nil {
		return "", err
	}

	c.stopNetworkHookServer()
	if len(networkHooks) > 0 {
		socketPath, err := c.startNetworkHookServer(networkHooks)
		if err != nil {
			return "", withDetailCause(ErrInvalidNetworkHook, err, ": start callback server")
		}
		network := params["network"].(map[string]interface{})
		interception := network["interception"].(map[string]interface{})
		interception["callback_socket"] = socketPath
	}

	result, err := c.sendRequest("create", params)
	if err != nil {
		c.stopNetworkHookServer()
		return "", err
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(result, &created); err != nil || created.ID == "" {
		c.stopNetworkHookServer()
		if err == nil {
			err = fmt.Errorf("no id in %s", string(result))
		}
		return "", wrapErr(ErrParseCreateResult, err)
	}
	c.setVMID(created.ID)
	c.vfs.set(vfsHooks)

	if len(opts.PortForwards) > 0 {
		if _, err := c.portForwardMappings(context.Background(), opts.PortForwardAddresses, opts.PortForwards); err != nil {
			return created.ID, err
		}
	}
	return created.ID, nil
}

// buildCreateParams validates opts and turns them into the create params,
// plus the SDK-side hooks the sandbox needs.
func buildCreateParams(opts CreateOptions) (map[string]interface{}, map[string]compiledNetworkHook, *compiledVFSHooks, error) {
	if strings.TrimSpace(opts.Image) == "" {
		return nil, nil, nil, ErrImageRequired
	}
	if opts.CPUs == 0 {
		opts.CPUs = DefaultCPUs
	}
	if opts.CPUs < 0 {
		return nil, nil, nil, ErrInvalidCPUCount
	}
	if opts.MemoryMB == 0 {
		opts.MemoryMB = DefaultMemoryMB
	}
	if opts.DiskSizeMB == 0 {
		opts.DiskSizeMB = DefaultDiskSizeMB
	}
	if opts.TimeoutSeconds == 0 {
		opts.TimeoutSeconds = DefaultTimeoutSeconds
	}
	if opts.NetworkMTU < 0 {
		return nil, nil, nil, ErrInvalidNetworkMTU
	}
	if opts.NoNetwork && (len(opts.AllowedHosts) > 0 || len(opts.Secrets) > 0 || opts.ForceInterception || opts.NetworkInterception != nil) {
		return nil, nil, nil, ErrNoNetworkConflict
	}
	for _, m := range opts.AddHosts {
		if err := validateAddHost(m); err != nil {
			return nil, nil, nil, wrapErr(ErrInvalidAddHost, err)
		}
	}

	wireRules, networkHooks, err := compileNetworkHooks(opts.NetworkInterception)
	if err != nil {
		return nil, nil, nil, err
	}
	wireVFS, vfsHooks, err := compileVFSHooks(opts.VFSInterception)
	if err != nil {
		return nil, nil, nil, err
	}

	params := map[string]interface{}{
		"image": opts.Image,
		"resources": map[string]interface{}{
			"cpus":            opts.CPUs,
			"memory_mb":       opts.MemoryMB,
			"disk_size_mb":    opts.DiskSizeMB,
			"timeout_seconds": opts.TimeoutSeconds,
		},
	}
	if opts.Privileged {
		params["privileged"] = true
	}
	if opts.LaunchEntrypoint {
		params["launch_entrypoint"] = true
	}
	if network := buildNetworkParams(opts, wireRules); network != nil {
		params["network"] = network
	}
	if len(opts.Mounts) > 0 || opts.Workspace != "" || wireVFS != nil {
		vfs := map[string]interface{}{}
		if len(opts.Mounts) > 0 {
			vfs["mounts"] = opts.Mounts
		}
		if opts.Workspace != "" {
			vfs["workspace"] = opts.Workspace
		}
		if wireVFS != nil {
			vfs["interception"] = wireVFS
		}
		params["vfs"] = vfs
	}
	if len(opts.Env) > 0 {
		params["env"] = opts.Env
	}
	if len(opts.ExtraDisks) > 0 {
		params["extra_disks"] = opts.ExtraDisks
	}
	if opts.ImageConfig != nil {
		params["image_config"] = opts.ImageConfig
	}
	return params, networkHooks, vfsHooks, nil
}

// buildNetworkParams mirrors the original: nothing when no network option is
// set; {no_network, add_hosts?, dns_servers?, hostname?} without network;
// else always allowed_hosts and block_private_ips (true unless the caller
// chose), plus whatever else is set.
func buildNetworkParams(opts CreateOptions, rules []map[string]interface{}) map[string]interface{} {
	blockPrivate, blockSet := opts.BlockPrivateIPs, opts.BlockPrivateIPsSet
	if !blockSet && opts.BlockPrivateIPs {
		blockSet = true
	}
	hasRules := rules != nil
	include := len(opts.AllowedHosts) > 0 || len(opts.AddHosts) > 0 || len(opts.Secrets) > 0 ||
		len(opts.DNSServers) > 0 || opts.Hostname != "" || opts.NetworkMTU > 0 || opts.NoNetwork ||
		blockSet || opts.ForceInterception || hasRules
	if !include {
		return nil
	}
	network := map[string]interface{}{}
	if opts.NoNetwork {
		network["no_network"] = true
	} else {
		allowed := opts.AllowedHosts
		if allowed == nil {
			allowed = []string{}
		}
		if !blockSet {
			blockPrivate = true
		}
		network["allowed_hosts"] = allowed
		network["block_private_ips"] = blockPrivate
		if opts.ForceInterception || hasRules {
			network["intercept"] = true
		}
		if hasRules {
			network["interception"] = map[string]interface{}{"rules": rules}
		}
		if len(opts.Secrets) > 0 {
			secrets := map[string]interface{}{}
			for _, s := range opts.Secrets {
				entry := map[string]interface{}{"value": s.Value, "hosts": nonNil(s.Hosts)}
				if s.Placeholder != "" {
					entry["placeholder"] = s.Placeholder
				}
				secrets[s.Name] = entry
			}
			network["secrets"] = secrets
		}
		if opts.NetworkMTU > 0 {
			network["mtu"] = opts.NetworkMTU
		}
	}
	if len(opts.AddHosts) > 0 {
		network["add_hosts"] = opts.AddHosts
	}
	if len(opts.DNSServers) > 0 {
		network["dns_servers"] = opts.DNSServers
	}
	if opts.Hostname != "" {
		network["hostname"] = opts.Hostname
	}
	return network
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func validateAddHost(m HostIPMapping) error {
	host := strings.TrimSpace(m.Host)
	if host == "" || strings.ContainsAny(host, " \t\r\n:/") {
		return fmt.Errorf("invalid host %q", m.Host)
	}
	ip := strings.TrimSpace(m.IP)
	if ip != "host-gateway" && net.ParseIP(ip) == nil {
		return fmt.Errorf("invalid IP %q for host %q", m.IP, m.Host)
	}
	return nil
}
