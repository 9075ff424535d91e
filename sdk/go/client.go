// Package sdk drives Matchlock sandboxes through `matchlock rpc`, a child
// process speaking line-delimited JSON-RPC 2.0 on its stdin and stdout.
//
//	client, err := sdk.NewClient(sdk.DefaultConfig())
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer client.Remove()
//	defer client.Close(0)
//
//	sandbox := sdk.New("alpine:latest").
//		WithCPUs(2).
//		WithMemory(1024).
//		AllowHost("api.openai.com").
//		AddSecret("API_KEY", os.Getenv("API_KEY"), "api.openai.com")
//
//	vmID, err := client.Launch(sandbox)
//	result, err := client.Exec(ctx, "echo hello")
//	fmt.Print(result.Stdout)
//
// The package uses the standard library only.
package sdk

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client is a connection to one `matchlock rpc` process, which holds at most
// one sandbox. All methods are safe for concurrent use.
type Client struct {
	cfg Config
	cmd *exec.Cmd

	stdin  io.WriteCloser
	stdout *bufio.Reader

	requestID atomic.Uint64

	writeMu   sync.Mutex
	pendingMu sync.Mutex
	pending   map[uint64]*pendingRequest // nil once the connection is gone
	connErr   error

	readerDone chan struct{}
	procDone   chan struct{}
	waitErr    error

	stderrMu  sync.Mutex
	stderrBuf []byte
	// stderrDone is closed once the process's stderr reached its end (nil before start).
	stderrDone chan struct{}

	mu      sync.Mutex
	vmID    string
	closing bool // Close was called
	closed  bool // Close sent its close request: new requests are refused

	networkHookMu       sync.Mutex
	networkHookListener io.Closer
	networkHookTempDir  string

	vfs vfsHookState
}

// Config holds client configuration.
type Config struct {
	// BinaryPath is the matchlock binary (default: $MATCHLOCK_BIN or "matchlock").
	BinaryPath string
	// UseSudo runs matchlock through sudo (needed where TAP devices require root).
	UseSudo bool
}

// DefaultConfig returns a Config whose binary comes from MATCHLOCK_BIN,
// falling back to "matchlock" on PATH.
func DefaultConfig() Config {
	path := os.Getenv("MATCHLOCK_BIN")
	if path == "" {
		path = "matchlock"
	}
	return Config{BinaryPath: path}
}

const stderrTailLimit = 8 << 10

// NewClient starts `matchlock rpc` and returns a client connected to it.
func NewClient(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.BinaryPath) == "" {
		cfg.BinaryPath = DefaultConfig().BinaryPath
	}
	cmd := cfg.command("rpc")

	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, wrapErr(ErrStdinPipe, err)
	}
	// Our own pipes (not StdoutPipe) so that Wait never closes the read side
	// under the reader before it has drained the last lines.
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, wrapErr(ErrStdoutPipe, err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, wrapErr(ErrStderrPipe, err)
	}
	cmd.Stdout = outW
	cmd.Stderr = errW
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return nil, wrapErr(ErrStartProc, err)
	}
	outW.Close()
	errW.Close()

	c := &Client{
		cfg:        cfg,
		cmd:        cmd,
		stdin:      stdin,
		stdout:     bufio.NewReaderSize(outR, 64<<10),
		pending:    make(map[uint64]*pendingRequest),
		readerDone: make(chan struct{}),
		procDone:   make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	go c.drainStderr(errR, c.stderrDone)
	go c.readLoop()
	go func() {
		c.waitErr = cmd.Wait()
		close(c.procDone)
		// A grandchild could keep stdout open after the process died: do not
		// let pending requests hang on it.
		select {
		case <-c.readerDone:
		case <-time.After(500 * time.Millisecond):
			c.failPending(io.ErrUnexpectedEOF)
		}
	}()
	return c, nil
}

// command builds an exec.Cmd for the matchlock binary, through sudo if asked.
func (cfg Config) command(args ...string) *exec.Cmd {
	if cfg.UseSudo {
		return exec.Command("sudo", append([]string{cfg.BinaryPath}, args...)...)
	}
	return exec.Command(cfg.BinaryPath, args...)
}

func (c *Client) drainStderr(r io.ReadCloser, done chan struct{}) {
	defer close(done)
	defer r.Close()
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			c.stderrMu.Lock()
			c.stderrBuf = append(c.stderrBuf, buf[:n]...)
			if over := len(c.stderrBuf) - stderrTailLimit; over > 0 {
				c.stderrBuf = append([]byte(nil), c.stderrBuf[over:]...)
			}
			c.stderrMu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// stderrTail returns the last bytes the rpc process wrote to stderr.
func (c *Client) stderrTail() string {
	c.stderrMu.Lock()
	defer c.stderrMu.Unlock()
	return strings.TrimSpace(string(c.stderrBuf))
}

// VMID returns the ID of the sandbox this client created, or "".
func (c *Client) VMID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vmID
}

func (c *Client) setVMID(id string) {
	c.mu.Lock()
	c.vmID = id
	c.mu.Unlock()
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// DefaultCloseTimeout is used by Close when given a timeout <= 0.
const DefaultCloseTimeout = 2 * time.Second

// Close stops the sandbox and the rpc process. It sends `close` with
// timeout_seconds, waits for the answer (at most timeout+1s), closes the
// process's stdin and waits up to timeout for it to exit; past that the
// process is killed and an error matching ErrCloseTimeout is returned.
// The sandbox's state stays on disk (it shows in `matchlock list`): call
// Remove afterwards to delete it. Close is idempotent.
func (c *Client) Close(timeout time.Duration) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.mu.Unlock()

	c.stopNetworkHookServer()
	c.vfs.reset()

	if timeout <= 0 {
		timeout = DefaultCloseTimeout
	}
	_, _ = c.sendRequestTimeout(timeout+time.Second, "close", map[string]interface{}{
		"timeout_seconds": timeout.Seconds(),
	})
	_ = c.stdin.Close()

	// From here on new requests fail with ErrClientClosed.
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.pendingMu.Lock()
	pending := c.pending
	c.pending = nil
	c.connErr = nil
	c.pendingMu.Unlock()
	for _, p := range pending {
		p.deliver(pendingResult{err: ErrClientClosed})
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-c.procDone:
		return c.waitErr
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.procDone
		return withDetail(ErrCloseTimeout, " after %s", timeout)
	}
}

// Remove deletes the stopped sandbox's state with `matchlock rm <id>`. Call it
// after Close. It does nothing when no sandbox was created.
func (c *Client) Remove() error {
	id := c.VMID()
	if id == "" {
		return nil
	}
	out, err := c.runCLI("rm", id)
	if err != nil {
		return withDetailCause(ErrRemoveVM, err, " %s: %s", id, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *Client) runCLI(args ...string) ([]byte, error) {
	if strings.TrimSpace(c.cfg.BinaryPath) == "" {
		return nil, ErrBinaryPathRequired
	}
	cmd := c.cfg.command(args...)
	return cmd.CombinedOutput()
}

// VolumeInfo describes a named volume.
type VolumeInfo struct {
	Name string
	// Size is human readable, e.g. "16.0 MB". A numeric size printed by the
	// CLI is taken as bytes and formatted that way.
	Size string
	Path string
}

// VolumeCreate creates a named ext4 volume of sizeMB megabytes
// (`matchlock volume create NAME --size MB --json`).
func (c *Client) VolumeCreate(name string, sizeMB int) (*VolumeInfo, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, ErrVolumeNameRequired
	}
	if sizeMB <= 0 {
		return nil, ErrInvalidVolumeSize
	}
	out, err := c.runCLI("volume", "create", name, "--size", strconv.Itoa(sizeMB), "--json")
	if err != nil {
		return nil, withDetailCause(ErrVolumeCommand, err, " create %s: %s", name, strings.TrimSpace(string(out)))
	}
	info, err := parseVolumeCreateOutput(out)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(info.Name) == "" {
		info.Name = name
	}
	if strings.TrimSpace(info.Size) == "" {
		info.Size = fmt.Sprintf("%.1f MB", float64(sizeMB))
	}
	return &info, nil
}

// VolumeList lists the named volumes (`matchlock volume ls --json`).
func (c *Client) VolumeList() ([]VolumeInfo, error) {
	out, err := c.runCLI("volume", "ls", "--json")
	if err != nil {
		return nil, withDetailCause(ErrVolumeCommand, err, " ls: %s", strings.TrimSpace(string(out)))
	}
	return parseVolumeListOutput(out)
}

// VolumeRemove removes a named volume (`matchlock volume rm NAME`).
func (c *Client) VolumeRemove(name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return ErrVolumeNameRequired
	}
	out, err := c.runCLI("volume", "rm", name)
	if err != nil {
		return withDetailCause(ErrVolumeCommand, err, " rm %s: %s", name, strings.TrimSpace(string(out)))
	}
	return nil
}

type wireVolume struct {
	Name string          `json:"name"`
	Size json.RawMessage `json:"size"`
	Path string          `json:"path"`
}

func (w wireVolume) info() VolumeInfo {
	v := VolumeInfo{Name: w.Name, Path: w.Path}
	raw := strings.TrimSpace(string(w.Size))
	if raw == "" || raw == "null" {
		return v
	}
	var s string
	if json.Unmarshal(w.Size, &s) == nil {
		v.Size = s
		return v
	}
	var n float64
	if json.Unmarshal(w.Size, &n) == nil {
		v.Size = fmt.Sprintf("%.1f MB", n/(1024*1024))
	}
	return v
}

func parseVolumeCreateOutput(out []byte) (VolumeInfo, error) {
	var w wireVolume
	if err := json.Unmarshal(lastJSONLine(out), &w); err != nil {
		return VolumeInfo{}, wrapErr(ErrParseVolumeCreateResult, err)
	}
	if strings.TrimSpace(w.Path) == "" {
		return VolumeInfo{}, ErrParseVolumeCreateResult
	}
	return w.info(), nil
}

func parseVolumeListOutput(out []byte) ([]VolumeInfo, error) {
	var ws []wireVolume
	if err := json.Unmarshal(lastJSONLine(out), &ws); err != nil {
		return nil, wrapErr(ErrParseVolumeListResult, err)
	}
	vols := make([]VolumeInfo, 0, len(ws))
	for _, w := range ws {
		if strings.TrimSpace(w.Name) == "" || strings.TrimSpace(w.Path) == "" {
			return nil, ErrParseVolumeListResult
		}
		vols = append(vols, w.info())
	}
	return vols, nil
}

// lastJSONLine picks the JSON document out of combined output: the whole
// output when it parses, else the last line that starts with { or [
// (stderr warnings may precede it).
func lastJSONLine(out []byte) []byte {
	trimmed := strings.TrimSpace(string(out))
	if json.Valid([]byte(trimmed)) {
		return []byte(trimmed)
	}
	lines := strings.Split(trimmed, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "{") || strings.HasPrefix(l, "[") {
			return []byte(l)
		}
	}
	return []byte(trimmed)
}
