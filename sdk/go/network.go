package sdk

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
)

// ParsePortForward parses "[LOCAL_PORT:]REMOTE_PORT" (ports 1-65535; a lone
// port forwards the same port number).
func ParsePortForward(spec string) (PortForward, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return PortForward{}, withDetail(ErrParsePortForwards, ": empty spec")
	}
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		p, err := parsePort(parts[0], "remote")
		if err != nil {
			return PortForward{}, err
		}
		return PortForward{LocalPort: p, RemotePort: p}, nil
	case 2:
		local, err := parsePort(parts[0], "local")
		if err != nil {
			return PortForward{}, err
		}
		remote, err := parsePort(parts[1], "remote")
		if err != nil {
			return PortForward{}, err
		}
		return PortForward{LocalPort: local, RemotePort: remote}, nil
	default:
		return PortForward{}, withDetail(ErrParsePortForwards, ": %q (expected [LOCAL_PORT:]REMOTE_PORT)", spec)
	}
}

// ParsePortForwards parses several specs.
func ParsePortForwards(specs []string) ([]PortForward, error) {
	out := make([]PortForward, 0, len(specs))
	for _, s := range specs {
		pf, err := ParsePortForward(s)
		if err != nil {
			return nil, err
		}
		out = append(out, pf)
	}
	return out, nil
}

func parsePort(value, role string) (int, error) {
	value = strings.TrimSpace(value)
	p, err := strconv.Atoi(value)
	if err != nil {
		return 0, withDetail(ErrParsePortForwards, ": %s port %q is not a number", role, value)
	}
	if p < 1 || p > 65535 {
		return 0, withDetail(ErrParsePortForwards, ": %s port %d must be in range 1-65535", role, p)
	}
	return p, nil
}

// PortForward forwards host ports to guest ports, given as
// "[LOCAL_PORT:]REMOTE_PORT", bound on 127.0.0.1. It replaces any earlier
// forwards of this sandbox.
func (c *Client) PortForward(ctx context.Context, specs ...string) ([]PortForwardBinding, error) {
	return c.PortForwardWithAddresses(ctx, nil, specs...)
}

// PortForwardWithAddresses is PortForward bound on the given host addresses.
func (c *Client) PortForwardWithAddresses(ctx context.Context, addresses []string, specs ...string) ([]PortForwardBinding, error) {
	forwards, err := ParsePortForwards(specs)
	if err != nil {
		return nil, err
	}
	return c.portForwardMappings(ctx, addresses, forwards)
}

func (c *Client) portForwardMappings(ctx context.Context, addresses []string, forwards []PortForward) ([]PortForwardBinding, error) {
	if len(forwards) == 0 {
		return nil, nil
	}
	for _, f := range forwards {
		if f.LocalPort < 1 || f.LocalPort > 65535 || f.RemotePort < 1 || f.RemotePort > 65535 {
			return nil, withDetail(ErrParsePortForwards, ": %d:%d (ports must be in range 1-65535)", f.LocalPort, f.RemotePort)
		}
	}
	if len(addresses) == 0 {
		addresses = []string{"127.0.0.1"}
	}
	result, err := c.sendRequestCtx(ctx, "port_forward", map[string]interface{}{
		"forwards":  forwards,
		"addresses": append([]string(nil), addresses...),
	}, nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Bindings []PortForwardBinding `json:"bindings"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, wrapErr(ErrParsePortBindings, err)
	}
	return r.Bindings, nil
}

// AllowListUpdate is the outcome of AllowListAdd / AllowListDelete.
type AllowListUpdate struct {
	Added        []string
	Removed      []string
	AllowedHosts []string
}

// AllowListAdd adds hosts to the running sandbox's allow-list. Entries may
// be comma-separated; duplicates and blanks are dropped.
func (c *Client) AllowListAdd(ctx context.Context, hosts ...string) (*AllowListUpdate, error) {
	return c.allowList(ctx, "allow_list_add", hosts)
}

// AllowListDelete removes hosts from the running sandbox's allow-list.
func (c *Client) AllowListDelete(ctx context.Context, hosts ...string) (*AllowListUpdate, error) {
	return c.allowList(ctx, "allow_list_delete", hosts)
}

func (c *Client) allowList(ctx context.Context, method string, hosts []string) (*AllowListUpdate, error) {
	normalized, err := normalizeHosts(hosts)
	if err != nil {
		return nil, err
	}
	result, err := c.sendRequestCtx(ctx, method, map[string]interface{}{"hosts": normalized}, nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Added        []string `json:"added"`
		Removed      []string `json:"removed"`
		AllowedHosts []string `json:"allowed_hosts"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, wrapErr(ErrParseAllowList, err)
	}
	return &AllowListUpdate{Added: r.Added, Removed: r.Removed, AllowedHosts: r.AllowedHosts}, nil
}

func normalizeHosts(hosts []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		for _, tok := range strings.Split(h, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" || seen[tok] {
				continue
			}
			seen[tok] = true
			out = append(out, tok)
		}
	}
	if len(out) == 0 {
		return nil, ErrAllowListHosts
	}
	return out, nil
}
