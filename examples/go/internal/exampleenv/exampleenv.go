// Package exampleenv holds what the examples share: the upstream URL from
// MATCHLOCK_EXAMPLE_UPSTREAM and a client set up from the environment.
package exampleenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"matchlock/sdk"
)

// Image is the image every example boots.
const Image = "busybox"

// Upstream is the HTTP server the sandbox talks to.
type Upstream struct {
	URL    string // as the guest uses it, e.g. http://upstream.test:18080
	Scheme string // http or https
	Host   string // host name part of URL
	IP     string // MATCHLOCK_EXAMPLE_UPSTREAM_IP, mapped to Host in the guest
}

// LoadUpstream reads MATCHLOCK_EXAMPLE_UPSTREAM (required) and
// MATCHLOCK_EXAMPLE_UPSTREAM_IP (optional).
func LoadUpstream() (Upstream, error) {
	raw := os.Getenv("MATCHLOCK_EXAMPLE_UPSTREAM")
	if raw == "" {
		return Upstream{}, fmt.Errorf("set MATCHLOCK_EXAMPLE_UPSTREAM to the upstream URL (see examples/go/README.md)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Upstream{}, fmt.Errorf("MATCHLOCK_EXAMPLE_UPSTREAM %q is not a URL", raw)
	}
	return Upstream{URL: raw, Scheme: u.Scheme, Host: u.Hostname(), IP: os.Getenv("MATCHLOCK_EXAMPLE_UPSTREAM_IP")}, nil
}

// Reach lets the sandbox reach the upstream: its host on the allow-list, and,
// when MATCHLOCK_EXAMPLE_UPSTREAM_IP is set, an /etc/hosts entry for it plus
// access to private addresses (a loopback or private upstream is blocked by
// default).
func (u Upstream) Reach(b *sdk.SandboxBuilder) *sdk.SandboxBuilder {
	b.AllowHost(u.Host)
	if u.IP != "" {
		b.AddHost(u.Host, u.IP)
		if ip := net.ParseIP(u.IP); ip != nil && (ip.IsLoopback() || ip.IsPrivate()) {
			b.AllowPrivateIPs()
		}
	} else if ip := net.ParseIP(u.Host); ip != nil && (ip.IsLoopback() || ip.IsPrivate()) {
		b.AllowPrivateIPs()
	}
	return b
}

// Start starts a client (binary from MATCHLOCK_BIN) and returns a cleanup
// that closes it and removes the sandbox.
func Start() (*sdk.Client, func(), error) {
	client, err := sdk.NewClient(sdk.DefaultConfig())
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if err := client.Close(2 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
		}
		if err := client.Remove(); err != nil {
			fmt.Fprintln(os.Stderr, "remove:", err)
		}
	}
	return client, cleanup, nil
}

// Fail prints err and exits 1.
func Fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}
