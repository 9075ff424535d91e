package sdk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordDir collects what every fake server received (for the contract test).
var recordDir string

func TestMain(m *testing.M) {
	if os.Getenv("SDK_FAKE_MATCHLOCK") == "1" {
		os.Exit(runFakeMatchlock())
	}
	dir, err := os.MkdirTemp("", "matchlock-sdk-go-records-")
	if err != nil {
		panic(err)
	}
	recordDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// useFake points MATCHLOCK_BIN at this test binary acting as matchlock, with
// the given scenario, and returns the file its messages are recorded in.
func useFake(t *testing.T, scenario string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(recordDir, strings.ReplaceAll(t.Name(), "/", "_")+".jsonl")
	_ = os.Remove(record) // a fresh record per run (go test -count=N)
	t.Setenv("MATCHLOCK_BIN", exe)
	t.Setenv("SDK_FAKE_MATCHLOCK", "1")
	t.Setenv("FAKE_SCENARIO", scenario)
	t.Setenv("FAKE_RECORD", record)
	return record
}

// newFakeClient starts a client against the fake and closes it at the end.
func newFakeClient(t *testing.T, scenario string) (*Client, string) {
	t.Helper()
	record := useFake(t, scenario)
	c, err := NewClient(DefaultConfig())
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(time.Second) })
	return c, record
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type recordLine struct {
	In          json.RawMessage `json:"in"`
	CLI         []string        `json:"cli"`
	HookRequest json.RawMessage `json:"hook_request"`
	HookReply   json.RawMessage `json:"hook_reply"`
	HookError   string          `json:"hook_error"`
	CallbackID  string          `json:"callback_id"`
	Violation   string          `json:"violation"`
}

func readRecords(t *testing.T, path string) []recordLine {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("records: %v", err)
	}
	defer fh.Close()
	var out []recordLine
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r recordLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record line: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// sent returns the requests recorded for method, decoded.
func sent(t *testing.T, path, method string) []map[string]interface{} {
	t.Helper()
	var out []map[string]interface{}
	for _, r := range readRecords(t, path) {
		if r.In == nil {
			continue
		}
		var msg map[string]interface{}
		if err := json.Unmarshal(r.In, &msg); err != nil {
			t.Fatal(err)
		}
		if msg["method"] == method {
			out = append(out, msg)
		}
	}
	return out
}

// sentEventually polls the records until n requests for method arrived.
func sentEventually(t *testing.T, path, method string, n int) []map[string]interface{} {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := sent(t, path, method)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustJSON(v interface{}) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func TestLaunchSendsCreateAndRecordsID(t *testing.T) {
	c, record := newFakeClient(t, "")
	sandbox := New("busybox").
		WithCPUs(2).
		WithMemory(1024).
		AllowHost("api.example.com", "*.pypi.org").
		AddHost("db.internal", "10.0.0.5").
		AddSecret("API_KEY", "sk-real", "api.example.com").
		WithEnv("MODE", "test").
		WithDNSServers("1.1.1.1").
		WithHostname("box").
		WithNetworkMTU(1400).
		WithUser("nobody").
		WithExtraDisk("/v/data.ext4", "/data", true)
	id, err := c.Launch(sandbox)
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	if id != "vm-fake1234" || c.VMID() != id {
		t.Fatalf("id %q, VMID %q", id, c.VMID())
	}
	reqs := sent(t, record, "create")
	if len(reqs) != 1 {
		t.Fatalf("%d create requests", len(reqs))
	}
	p := reqs[0]["params"].(map[string]interface{})
	if p["image"] != "busybox" || p["launch_entrypoint"] != true {
		t.Fatalf("params %s", mustJSON(p))
	}
	if _, ok := p["id"]; ok {
		t.Fatal("create must not send id")
	}
	res := p["resources"].(map[string]interface{})
	if mustJSON(res) != `{"cpus":2,"disk_size_mb":5120,"memory_mb":1024,"timeout_seconds":300}` {
		t.Fatalf("resources %s", mustJSON(res))
	}
	net := p["network"].(map[string]interface{})
	want := `{"add_hosts":[{"host":"db.internal","ip":"10.0.0.5"}],"allowed_hosts":["api.example.com","*.pypi.org"],"block_private_ips":true,"dns_servers":["1.1.1.1"],"hostname":"box","mtu":1400,"secrets":{"API_KEY":{"hosts":["api.example.com"],"value":"sk-real"}}}`
	if got := mustJSON(net); got != want {
		t.Fatalf("network\n got %s\nwant %s", got, want)
	}
	if mustJSON(p["env"]) != `{"MODE":"test"}` || mustJSON(p["image_config"]) != `{"user":"nobody"}` {
		t.Fatalf("env/image_config %s", mustJSON(p))
	}
	if mustJSON(p["extra_disks"]) != `[{"guest_mount":"/data","host_path":"/v/data.ext4","readonly":true}]` {
		t.Fatalf("extra_disks %s", mustJSON(p["extra_disks"]))
	}
}

func TestCreateNetworkShapes(t *testing.T) {
	cases := []struct {
		name string
		b    *SandboxBuilder
		want string
	}{
		{"none", New("img"), `null`},
		{"no network", New("img").WithNoNetwork().WithHostname("h"), `{"hostname":"h","no_network":true}`},
		{"allow private", New("img").AllowPrivateIPs(), `{"allowed_hosts":[],"block_private_ips":false}`},
		{"force interception", New("img").WithNetworkInterception(), `{"allowed_hosts":[],"block_private_ips":true,"intercept":true}`},
		{"placeholder", New("img").AddSecretWithPlaceholder("K", "v", "PH", "a.com"), `{"allowed_hosts":[],"block_private_ips":true,"secrets":{"K":{"hosts":["a.com"],"placeholder":"PH","value":"v"}}}`},
	}
	for _, tc := range cases {
		params, _, _, err := buildCreateParams(tc.b.Options())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := mustJSON(params["network"]); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		if _, ok := params["launch_entrypoint"]; ok {
			t.Errorf("%s: Create must not set launch_entrypoint", tc.name)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	cases := []struct {
		opts CreateOptions
		want error
	}{
		{CreateOptions{}, ErrImageRequired},
		{CreateOptions{Image: "i", CPUs: -1}, ErrInvalidCPUCount},
		{CreateOptions{Image: "i", NetworkMTU: -1}, ErrInvalidNetworkMTU},
		{CreateOptions{Image: "i", NoNetwork: true, AllowedHosts: []string{"a"}}, ErrNoNetworkConflict},
		{CreateOptions{Image: "i", AddHosts: []HostIPMapping{{Host: "h", IP: "nope"}}}, ErrInvalidAddHost},
		{CreateOptions{Image: "i", NetworkInterception: &NetworkInterceptionConfig{Rules: []NetworkHookRule{{Action: "block", Hook: func(context.Context, NetworkHookRequest) (*NetworkHookResult, error) { return nil, nil }}}}}, ErrInvalidNetworkHook},
		{CreateOptions{Image: "i", VFSInterception: &VFSInterceptionConfig{Rules: []VFSHookRule{{Phase: "before", Hook: func(context.Context, VFSHookEvent) error { return nil }}}}}, ErrInvalidVFSHook},
	}
	for i, tc := range cases {
		if _, _, _, err := buildCreateParams(tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("case %d: got %v, want %v", i, err, tc.want)
		}
	}
}

func TestCreateErrorIsRPCError(t *testing.T) {
	c, _ := newFakeClient(t, "")
	_, err := c.Launch(New("bad-image"))
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != ErrCodeVMFailed || !rpcErr.IsVMError() || !strings.Contains(rpcErr.Message, "bad-image") {
		t.Fatalf("got %v", err)
	}
	if c.VMID() != "" {
		t.Fatal("VMID set after failed create")
	}
}

func TestExecBufferedAndBinarySafe(t *testing.T) {
	c, record := newFakeClient(t, "")
	ctx := testCtx(t)
	r, err := c.Exec(ctx, "echo hello")
	if err != nil || r.Stdout != "hello\n" || r.Stderr != "" || r.ExitCode != 0 || r.DurationMS != 3 {
		t.Fatalf("exec: %+v %v", r, err)
	}
	r, err = c.Exec(ctx, "binary")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Stdout) != 256 || len(r.Stderr) != 256 {
		t.Fatalf("lengths %d %d", len(r.Stdout), len(r.Stderr))
	}
	for i := 0; i < 256; i++ {
		if r.Stdout[i] != byte(i) || r.Stderr[i] != byte(255-i) {
			t.Fatalf("byte %d differs", i)
		}
	}
	r, err = c.ExecWithOptions(ctx, "pwd", ExecOptions{WorkingDir: "/tmp", User: "1000", Env: map[string]string{"A": "b"}})
	if err != nil || r.Stdout != `/tmp|1000|{"A":"b"}` {
		t.Fatalf("options: %+v %v", r, err)
	}
	r, err = c.ExecWithDir(ctx, "whatever", "/srv")
	if err != nil || r.ExitCode != 127 || !strings.Contains(r.Stderr, "not found") {
		t.Fatalf("non-zero exit: %+v %v", r, err)
	}
	// 3 MiB of output: one long line.
	r, err = c.Exec(ctx, "big")
	if err != nil || len(r.Stdout) != 3<<20 {
		t.Fatalf("big: %v", err)
	}
	reqs := sent(t, record, "exec")
	if got := mustJSON(reqs[0]["params"]); got != `{"command":"echo hello"}` {
		t.Fatalf("exec params %s", got)
	}
	if got := mustJSON(reqs[3]["params"]); got != `{"command":"whatever","working_dir":"/srv"}` {
		t.Fatalf("exec params %s", got)
	}
}

func TestExecErrorAndUnknownMethod(t *testing.T) {
	c, _ := newFakeClient(t, "")
	_, err := c.Exec(testCtx(t), "fail")
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || !rpcErr.IsExecError() || rpcErr.Error() != "matchlock RPC error [-32001]: exec failed: no such command" {
		t.Fatalf("got %v", err)
	}
	_, err = c.sendRequest("no_such_method", nil)
	if !errors.As(err, &rpcErr) || rpcErr.Code != ErrCodeMethodNotFound {
		t.Fatalf("got %v", err)
	}
}

func TestExecCancelSendsCancel(t *testing.T) {
	c, record := newFakeClient(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "sleep")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("cancel took too long")
	}
	// The client keeps working after a cancel.
	if r, err := c.Exec(testCtx(t), "echo hello"); err != nil || r.Stdout != "hello\n" {
		t.Fatalf("after cancel: %v", err)
	}
	execs := sent(t, record, "exec")
	cancels := sentEventually(t, record, "cancel", 1)
	if len(cancels) != 1 {
		t.Fatalf("%d cancel requests", len(cancels))
	}
	target := cancels[0]["params"].(map[string]interface{})["id"]
	if target != execs[0]["id"] {
		t.Fatalf("cancel targets %v, exec id %v", target, execs[0]["id"])
	}
	if cancels[0]["id"] == execs[0]["id"] {
		t.Fatal("cancel must carry its own id")
	}
}

func TestExecStreamRoutesNotifications(t *testing.T) {
	c, _ := newFakeClient(t, "")
	var out, errOut bytes.Buffer
	r, err := c.ExecStream(testCtx(t), "stream", &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "out-1 out-2" || errOut.String() != "err-1" || r.ExitCode != 3 || r.DurationMS != 12 {
		t.Fatalf("out %q err %q result %+v", out.String(), errOut.String(), r)
	}
	// nil writers discard.
	if _, err := c.ExecStreamWithDir(testCtx(t), "stream", "/", nil, nil); err != nil {
		t.Fatal(err)
	}
}

// slowReader hands out its data in small pieces.
type slowReader struct {
	data []byte
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := 3000
	if n > len(r.data) {
		n = len(r.data)
	}
	n = copy(p[:n], r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

func TestExecPipeStdinAfterReady(t *testing.T) {
	c, record := newFakeClient(t, "")
	input := make([]byte, 10000)
	for i := range input {
		input[i] = byte(i * 7)
	}
	var out, errOut syncBuffer
	r, err := c.ExecPipe(testCtx(t), "cat", ExecPipeOptions{Stdin: &slowReader{data: append([]byte(nil), input...)}, Stdout: &out, Stderr: &errOut, WorkingDir: "/w"})
	if err != nil {
		t.Fatalf("ExecPipe: %v", err)
	}
	if r.ExitCode != 0 || !bytes.Equal(out.Bytes(), input) {
		t.Fatalf("exit %d, echoed %d bytes", r.ExitCode, len(out.Bytes()))
	}
	if errOut.String() != "[3000][3000][3000][1000]" {
		t.Fatalf("stderr %q", errOut.String())
	}
	pipes := sent(t, record, "exec_pipe")
	stdin := sent(t, record, "exec_pipe.stdin")
	eofs := sent(t, record, "exec_pipe.stdin_eof")
	if len(pipes) != 1 || len(stdin) != 4 || len(eofs) != 1 {
		t.Fatalf("%d pipes, %d stdin, %d eof", len(pipes), len(stdin), len(eofs))
	}
	for _, s := range append(stdin, eofs...) {
		if s["params"].(map[string]interface{})["id"] != pipes[0]["id"] || s["id"] == nil {
			t.Fatalf("stdin message %s", mustJSON(s))
		}
	}
	// nil stdin: EOF right after ready.
	r, err = c.ExecPipe(testCtx(t), "true", ExecPipeOptions{})
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("nil stdin: %+v %v", r, err)
	}
}

func TestExecInteractiveResizeAndStdin(t *testing.T) {
	c, record := newFakeClient(t, "")
	resize := make(chan [2]uint16, 1)
	resize <- [2]uint16{50, 132}
	pr, pw := io.Pipe()
	var out syncBuffer
	done := make(chan struct{})
	var r *ExecInteractiveResult
	var err error
	go func() {
		defer close(done)
		r, err = c.ExecInteractive(testCtx(t), "sh", ExecInteractiveOptions{Stdin: pr, Stdout: &out, Resize: resize})
	}()
	if _, werr := pw.Write([]byte("ls\r")); werr != nil {
		t.Fatal(werr)
	}
	time.Sleep(100 * time.Millisecond) // let the resize go out before EOF
	pw.Close()
	<-done
	if err != nil {
		t.Fatalf("ExecInteractive: %v", err)
	}
	if out.String() != "ls\r" || r.ExitCode != (50*1000+132)%256 {
		t.Fatalf("out %q exit %d", out.String(), r.ExitCode)
	}
	tty := sent(t, record, "exec_tty")
	if got := mustJSON(tty[0]["params"]); got != `{"cols":80,"command":"sh","rows":24}` {
		t.Fatalf("exec_tty params %s", got)
	}
	if len(sent(t, record, "exec_tty.resize")) != 1 || len(sent(t, record, "exec_tty.stdin_eof")) != 1 {
		t.Fatal("resize or eof missing")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

func TestFilesRoundTrip(t *testing.T) {
	c, record := newFakeClient(t, "")
	ctx := testCtx(t)
	content := make([]byte, 256)
	for i := range content {
		content[i] = byte(i)
	}
	if err := c.WriteFile(ctx, "/data/bin.dat", content); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFileMode(ctx, "/data/run.sh", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadFile(ctx, "/data/bin.dat")
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("read back: %v", err)
	}
	files, err := c.ListFiles(ctx, "/data")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]FileInfo{}
	for _, f := range files {
		byName[f.Name] = f
	}
	if byName["bin.dat"].Size != 256 || byName["bin.dat"].Mode != 0o644 || byName["run.sh"].Mode != 0o755 || !byName["sub"].IsDir {
		t.Fatalf("files %+v", files)
	}
	if byName["bin.dat"].ModTime.Year() != 2024 || !byName["sub"].ModTime.IsZero() {
		t.Fatalf("mod times %+v", files)
	}
	_, err = c.ReadFile(ctx, "/missing")
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || !rpcErr.IsFileError() {
		t.Fatalf("missing file: %v", err)
	}
	writes := sent(t, record, "write_file")
	if writes[0]["params"].(map[string]interface{})["mode"] != float64(420) {
		t.Fatalf("default mode: %s", mustJSON(writes[0]))
	}
}

func TestPortForwardAndAllowList(t *testing.T) {
	c, record := newFakeClient(t, "")
	ctx := testCtx(t)
	b, err := c.PortForward(ctx, "18080:8080", "9000")
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(b) != `[{"address":"127.0.0.1","local_port":18080,"remote_port":8080},{"address":"127.0.0.1","local_port":9000,"remote_port":9000}]` {
		t.Fatalf("bindings %s", mustJSON(b))
	}
	if _, err := c.PortForwardWithAddresses(ctx, []string{"0.0.0.0"}, "8080"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"0", "70000", "a:b", "1:2:3", ""} {
		if _, err := c.PortForward(ctx, bad); !errors.Is(err, ErrParsePortForwards) {
			t.Errorf("spec %q: %v", bad, err)
		}
	}
	pf := sent(t, record, "port_forward")
	if len(pf) != 2 || mustJSON(pf[1]["params"]) != `{"addresses":["0.0.0.0"],"forwards":[{"local_port":8080,"remote_port":8080}]}` {
		t.Fatalf("port_forward %s", mustJSON(pf))
	}

	up, err := c.AllowListAdd(ctx, "a.com, b.com", "a.com")
	if err != nil || mustJSON(up.Added) != `["a.com","b.com"]` || mustJSON(up.AllowedHosts) != `["a.com","b.com"]` {
		t.Fatalf("add: %+v %v", up, err)
	}
	up, err = c.AllowListDelete(ctx, "a.com")
	if err != nil || mustJSON(up.Removed) != `["a.com"]` || mustJSON(up.AllowedHosts) != `["b.com"]` {
		t.Fatalf("delete: %+v %v", up, err)
	}
	if _, err := c.AllowListAdd(ctx, " , "); !errors.Is(err, ErrAllowListHosts) {
		t.Fatalf("empty: %v", err)
	}
}

func TestLaunchAppliesPortForwards(t *testing.T) {
	c, record := newFakeClient(t, "")
	if _, err := c.Launch(New("busybox").WithPortForward(18080, 80).WithPortForwardAddresses("127.0.0.1", "::1")); err != nil {
		t.Fatal(err)
	}
	pf := sent(t, record, "port_forward")
	if len(pf) != 1 || mustJSON(pf[0]["params"]) != `{"addresses":["127.0.0.1","::1"],"forwards":[{"local_port":18080,"remote_port":80}]}` {
		t.Fatalf("port_forward %s", mustJSON(pf))
	}
}

func TestLogAndLogStream(t *testing.T) {
	c, record := newFakeClient(t, "")
	log, err := c.Log(testCtx(t))
	if err != nil || log != "boot: ok\nentrypoint started\n" {
		t.Fatalf("log %q %v", log, err)
	}
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for !strings.Contains(out.String(), "line 2") {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	err = c.LogStream(ctx, &out)
	if !errors.Is(err, context.Canceled) || out.String() != "line 1\nline 2\n" {
		t.Fatalf("log stream %q %v", out.String(), err)
	}
	if len(sentEventually(t, record, "cancel", 1)) != 1 {
		t.Fatal("log_stream was not cancelled")
	}
}

func TestNetworkCallbackHooks(t *testing.T) {
	c, record := newFakeClient(t, "")
	var seen NetworkHookRequest
	var seenMu sync.Mutex
	rules := []NetworkHookRule{
		{Name: "static", Phase: NetworkHookPhaseBefore, Hosts: []string{"api.example.com"}, SetHeaders: map[string]string{"X-A": "1"}, DeleteHeaders: []string{"X-B"}},
		{Name: "mutate", Phase: NetworkHookPhaseBefore, Hosts: []string{"api.example.com"}, TimeoutMS: 2000,
			Hook: func(ctx context.Context, req NetworkHookRequest) (*NetworkHookResult, error) {
				seenMu.Lock()
				seen = req
				seenMu.Unlock()
				h := req.RequestHeaders
				h["X-Hooked"] = []string{"yes"}
				return &NetworkHookResult{Action: NetworkHookActionMutate, Request: &NetworkHookRequestMutation{Headers: h, Path: "/v2/chat"}}, nil
			}},
		{Name: "sse", Phase: NetworkHookPhaseAfter, BodyReplacements: []NetworkBodyTransform{{Find: "foo", Replace: "bar"}}},
		{Name: "body", Phase: NetworkHookPhaseAfter,
			Hook: func(ctx context.Context, req NetworkHookRequest) (*NetworkHookResult, error) {
				if !req.IsSSE || req.StatusCode != 200 {
					return nil, errors.New("unexpected response view")
				}
				return &NetworkHookResult{Response: &NetworkHookResponseMutation{SetBody: []byte{0, 1, 2}, BodyReplacements: []NetworkBodyTransform{{Find: "a", Replace: "b"}}}}, nil
			}},
		{Name: "failing", Hook: func(ctx context.Context, req NetworkHookRequest) (*NetworkHookResult, error) {
			return nil, errors.New("hook exploded")
		}},
		{Name: "noop", Action: NetworkHookActionAllow, Hook: func(ctx context.Context, req NetworkHookRequest) (*NetworkHookResult, error) {
			return nil, nil
		}},
		{Name: "panics", Hook: func(ctx context.Context, req NetworkHookRequest) (*NetworkHookResult, error) {
			panic("boom")
		}},
	}
	if _, err := c.Launch(New("busybox").AllowHost("api.example.com").WithNetworkInterception(&NetworkInterceptionConfig{Rules: rules})); err != nil {
		t.Fatal(err)
	}
	create := sent(t, record, "create")[0]["params"].(map[string]interface{})
	network := create["network"].(map[string]interface{})
	interception := network["interception"].(map[string]interface{})
	socket, _ := interception["callback_socket"].(string)
	if socket == "" || network["intercept"] != true {
		t.Fatalf("network %s", mustJSON(network))
	}
	wireRules := interception["rules"].([]interface{})
	wantIDs := []string{"", "network_hook_2", "", "network_hook_4", "network_hook_5", "network_hook_6", "network_hook_7"}
	for i, r := range wireRules {
		id, _ := r.(map[string]interface{})["callback_id"].(string)
		if id != wantIDs[i] {
			t.Fatalf("rule %d callback_id %q, want %q", i, id, wantIDs[i])
		}
	}
	if _, has := wireRules[1].(map[string]interface{})["action"]; has {
		t.Fatal("rule without action must not send one")
	}

	replies := map[string]string{}
	for _, r := range readRecords(t, record) {
		if r.HookError != "" {
			t.Fatalf("hook %s: %s", r.CallbackID, r.HookError)
		}
		if r.HookReply != nil {
			replies[r.CallbackID] = string(r.HookReply)
		}
	}
	want := map[string]string{
		"network_hook_2":   `{"action":"mutate","request":{"headers":{"Authorization":["Bearer x"],"X-Hooked":["yes"],"X-Trace":["a","b"]},"path":"/v2/chat"}}`,
		"network_hook_4":   `{"response":{"body_replacements":[{"find":"a","replace":"b"}],"set_body_base64":"AAEC"}}`,
		"network_hook_5":   `{"error":"hook exploded"}`,
		"network_hook_6":   `{}`,
		"network_hook_7":   `{"error":"network hook panicked: boom"}`,
		"network_hook_999": `{"error":"network hook callback not found: network_hook_999"}`,
	}
	for id, w := range want {
		if replies[id] != w {
			t.Errorf("%s reply\n got %s\nwant %s", id, replies[id], w)
		}
	}
	seenMu.Lock()
	if seen.Host != "api.example.com" || seen.Method != "POST" || seen.Path != "/v1/chat" || seen.Query["q"] != "1" || seen.Phase != "before" {
		t.Errorf("hook saw %+v", seen)
	}
	seenMu.Unlock()

	// Close removes the socket.
	if err := c.Close(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Fatalf("socket still there: %v", err)
	}
}

func TestVFSRequestShapeAndLocalHooks(t *testing.T) {
	c, record := newFakeClient(t, "")
	var events []VFSHookEvent
	var mu sync.Mutex
	cfg := &VFSInterceptionConfig{Rules: []VFSHookRule{
		{Name: "block-create", Phase: VFSHookPhaseBefore, Ops: []VFSHookOp{VFSHookOpCreate}, Path: "/workspace/blocked.txt", Action: VFSHookActionBlock},
		{Name: "after", Phase: VFSHookPhaseAfter, Ops: []VFSHookOp{VFSHookOpWrite}, Path: "/workspace/*", Hook: func(ctx context.Context, e VFSHookEvent) error {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
			return nil
		}},
		{Name: "upper", Phase: VFSHookPhaseBefore, Path: "/workspace/*.txt", MutateHook: func(ctx context.Context, r VFSMutateRequest) ([]byte, error) {
			return []byte("MUTATED"), nil
		}},
		{Name: "deny", Path: "/secret/*", ActionHook: func(ctx context.Context, r VFSActionRequest) VFSHookAction {
			return VFSHookActionBlock
		}},
	}}
	if _, err := c.Launch(New("busybox").WithWorkspace("/workspace").MountMemory("/workspace").WithVFSInterception(cfg)); err != nil {
		t.Fatal(err)
	}
	vfs := sent(t, record, "create")[0]["params"].(map[string]interface{})["vfs"]
	want := `{"interception":{"emit_events":true,"rules":[{"action":"block","name":"block-create","ops":["create"],"path":"/workspace/blocked.txt","phase":"before"}]},"mounts":{"/workspace":{"type":"memory"}},"workspace":"/workspace"}`
	if got := mustJSON(vfs); got != want {
		t.Fatalf("vfs\n got %s\nwant %s", got, want)
	}
	ctx := testCtx(t)
	if err := c.WriteFile(ctx, "/workspace/a.txt", []byte("orig")); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.ReadFile(ctx, "/workspace/a.txt"); string(got) != "MUTATED" {
		t.Fatalf("mutate hook: %q", got)
	}
	if err := c.WriteFile(ctx, "/secret/k", []byte("x")); !errors.Is(err, ErrVFSHookBlocked) {
		t.Fatalf("action hook: %v", err)
	}
	if _, err := c.ListFiles(ctx, "/secret/dir"); !errors.Is(err, ErrVFSHookBlocked) {
		t.Fatalf("action hook on list: %v", err)
	}
	// File events from the server run the after-hook (the test feeds one
	// through the client's notification path).
	c.handleNotification("event", json.RawMessage(`{"type":"file","timestamp":1,"file":{"op":"WRITE","path":"/workspace/a.txt","size":7,"mode":420,"uid":1,"gid":2}}`))
	c.handleNotification("event", json.RawMessage(`{"type":"file","timestamp":1,"file":{"op":"write","path":"/other/b.txt","size":1}}`))
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0] != (VFSHookEvent{Op: "write", Path: "/workspace/a.txt", Size: 7, Mode: 420, UID: 1, GID: 2}) {
		t.Fatalf("events %+v", events)
	}
}

func TestCloseSendsCloseAndExits(t *testing.T) {
	c, record := newFakeClient(t, "")
	start := time.Now()
	if err := c.Close(0); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("close was slow")
	}
	closes := sent(t, record, "close")
	if len(closes) != 1 || mustJSON(closes[0]["params"]) != `{"timeout_seconds":2}` {
		t.Fatalf("close %s", mustJSON(closes))
	}
	if err := c.Close(0); err != nil {
		t.Fatal("second Close must be a no-op")
	}
	if _, err := c.Exec(testCtx(t), "echo hello"); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestCloseKillsHungServer(t *testing.T) {
	c, _ := newFakeClient(t, "hang_close")
	start := time.Now()
	err := c.Close(300 * time.Millisecond)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrCloseTimeout) {
		t.Fatalf("got %v", err)
	}
	// close answer wait (t+1s) + exit wait (t), then kill.
	if elapsed < 1500*time.Millisecond || elapsed > 4*time.Second {
		t.Fatalf("close took %s", elapsed)
	}
}

func TestProcessExitFailsPendingRequests(t *testing.T) {
	c, _ := newFakeClient(t, "")
	ctx := testCtx(t)
	errs := make(chan error, 2)
	go func() {
		_, err := c.Exec(ctx, "sleep")
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond)
	go func() {
		_, err := c.Exec(ctx, "die")
		errs <- err
	}()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrConnectionClose) {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(err.Error(), "dying on purpose") {
				t.Fatalf("stderr tail missing: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pending request hung after the process died")
		}
	}
	if _, err := c.Exec(ctx, "echo hello"); !errors.Is(err, ErrConnectionClose) {
		t.Fatalf("later request: %v", err)
	}
}

func TestServerExitsAtStart(t *testing.T) {
	c, _ := newFakeClient(t, "exit_now")
	_, err := c.Launch(New("busybox"))
	if !errors.Is(err, ErrConnectionClose) && !errors.Is(err, ErrWriteRequest) {
		t.Fatalf("got %v", err)
	}
}

func TestNewClientMissingBinary(t *testing.T) {
	_, err := NewClient(Config{BinaryPath: "/nonexistent/matchlock"})
	if !errors.Is(err, ErrStartProc) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestConcurrentRequests(t *testing.T) {
	c, _ := newFakeClient(t, "")
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				r, err := c.Exec(ctx, "echo hello")
				if err == nil && r.Stdout != "hello\n" {
					err = errors.New("wrong output")
				}
				errs <- err
				return
			}
			var out bytes.Buffer
			_, err := c.ExecStream(ctx, "stream", &out, nil)
			if err == nil && out.String() != "out-1 out-2" {
				err = errors.New("wrong stream " + out.String())
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRemoveAndVolumes(t *testing.T) {
	c, record := newFakeClient(t, "")
	if err := c.Remove(); err != nil {
		t.Fatal("Remove without a sandbox must be a no-op")
	}
	if _, err := c.Launch(New("busybox")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(0); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	c.setVMID("vm-missing")
	if err := c.Remove(); !errors.Is(err, ErrRemoveVM) || !strings.Contains(err.Error(), "no such sandbox") {
		t.Fatalf("failing rm: %v", err)
	}

	v, err := c.VolumeCreate("data", 16)
	if err != nil || v.Name != "data" || v.Size != "16.0 MB" || v.Path != "/var/lib/matchlock/volumes/data.ext4" {
		t.Fatalf("create %+v %v", v, err)
	}
	vols, err := c.VolumeList()
	if err != nil || len(vols) != 2 || vols[0].Size != "16.0 MB" || vols[1].Size != "32.0 MB" || vols[1].Path != "/v/cache.ext4" {
		t.Fatalf("list %+v %v", vols, err)
	}
	if err := c.VolumeRemove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.VolumeCreate(" ", 1); !errors.Is(err, ErrVolumeNameRequired) {
		t.Fatal(err)
	}
	if _, err := c.VolumeCreate("x", 0); !errors.Is(err, ErrInvalidVolumeSize) {
		t.Fatal(err)
	}
	var cli [][]string
	for _, r := range readRecords(t, record) {
		if r.CLI != nil {
			cli = append(cli, r.CLI)
		}
	}
	want := `[["rm","vm-fake1234"],["rm","vm-missing"],["volume","create","data","--size","16","--json"],["volume","ls","--json"],["volume","rm","data"]]`
	if mustJSON(cli) != want {
		t.Fatalf("cli calls %s", mustJSON(cli))
	}
}
