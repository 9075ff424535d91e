package sdk

// Contract conformance: every request the SDK sent to the fake servers during
// the unit tests is checked against contract/rpc.json, and results and
// notifications shaped exactly as the contract says are accepted.
// (The file name sorts last so that the other tests' records exist by now.)

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func mustContract(t *testing.T) *contract {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatalf("load contract (%s): %v", contractPath(), err)
	}
	return c
}

// runTour drives every method once against the ordinary fake.
func runTour(t *testing.T) {
	c, _ := newFakeClient(t, "")
	ctx := testCtx(t)
	hook := func(ctx context.Context, req NetworkHookRequest) (*NetworkHookResult, error) { return nil, nil }
	sandbox := New("busybox").
		WithPrivileged().WithCPUs(1.5).WithMemory(256).WithDiskSize(1024).WithTimeout(60).
		AllowHost("a.example.com").AddHost("h.internal", "10.1.2.3").
		AddSecret("TOKEN", "v", "a.example.com").AddSecretWithPlaceholder("K2", "v2", "PH2").
		WithDNSServers("9.9.9.9").WithHostname("tour").WithNetworkMTU(1280).
		WithEnv("A", "1").WithUser("root").WithEntrypoint("/bin/sh").
		WithImageConfig(&ImageConfig{WorkingDir: "/w", Cmd: []string{"-c", "true"}, Env: map[string]string{"E": "e"}}).
		WithExtraDisk("/v/d.ext4", "/d", false).
		WithWorkspace("/workspace").MountMemory("/workspace").MountHostDirReadonly("/workspace/src", "/tmp").
		WithVFSInterception(&VFSInterceptionConfig{Rules: []VFSHookRule{{Phase: "before", Ops: []VFSHookOp{"create"}, Action: "block"}}}).
		WithNetworkInterception(&NetworkInterceptionConfig{Rules: []NetworkHookRule{
			{Phase: "before", Hosts: []string{"a.example.com"}, Methods: []string{"GET"}, Path: "/x", Action: "mutate",
				SetHeaders: map[string]string{"X": "1"}, DeleteHeaders: []string{"Y"}, SetQuery: map[string]string{"q": "1"}, DeleteQuery: []string{"z"}, RewritePath: "/y"},
			{Phase: "after", SetResponseHeaders: map[string]string{"R": "1"}, DeleteResponseHeaders: []string{"S"}, BodyReplacements: []NetworkBodyTransform{{Find: "a", Replace: "b"}}},
			{Phase: "before", TimeoutMS: 500, Hook: hook},
		}}).
		WithPortForward(18081, 81)
	if _, err := c.Launch(sandbox); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "echo hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecWithOptions(ctx, "pwd", ExecOptions{WorkingDir: "/", User: "1", Env: map[string]string{"K": "V"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecStream(ctx, "stream", io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecPipe(ctx, "cat", ExecPipeOptions{Stdin: strings.NewReader("hi"), User: "1", WorkingDir: "/"}); err != nil {
		t.Fatal(err)
	}
	resize := make(chan [2]uint16, 1)
	resize <- [2]uint16{30, 100}
	pr, pw := io.Pipe()
	go func() {
		time.Sleep(150 * time.Millisecond)
		_, _ = pw.Write([]byte("x"))
		pw.Close()
	}()
	if _, err := c.ExecInteractive(ctx, "sh", ExecInteractiveOptions{Rows: 40, Cols: 120, Stdin: pr, Resize: resize, WorkingDir: "/", User: "1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile(ctx, "/tmp/f", []byte{0, 255}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFile(ctx, "/tmp/f"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListFiles(ctx, "/tmp"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PortForward(ctx, "18082:82"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllowListAdd(ctx, "b.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllowListDelete(ctx, "b.example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Log(ctx); err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_ = c.LogStream(lctx, io.Discard)
	cancel()
	time.Sleep(50 * time.Millisecond) // let the cancel reach the fake
	if err := c.Close(0); err != nil {
		t.Fatal(err)
	}
}

func TestContractRequestsConform(t *testing.T) {
	ct := mustContract(t)
	runTour(t)

	paths, err := filepath.Glob(filepath.Join(recordDir, "*.jsonl"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no records (%v)", err)
	}
	seen := map[string]int{}
	checked := 0
	for _, path := range paths {
		for _, r := range readRecords(t, path) {
			if r.Violation != "" {
				t.Errorf("%s: %s", filepath.Base(path), r.Violation)
			}
			if r.HookReply != nil {
				v, _ := decodeNumbers(r.HookReply)
				obj, _ := v.(map[string]interface{})
				for _, p := range ct.checkShape("HookCallbackReply", ct.Types["HookCallbackReply"], obj) {
					t.Errorf("%s: %s", filepath.Base(path), p)
				}
			}
			if r.In == nil {
				continue
			}
			var env struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(r.In, &env)
			if env.Method == "no_such_method" {
				continue // sent on purpose by TestExecErrorAndUnknownMethod
			}
			seen[env.Method]++
			checked++
			for _, p := range ct.checkRequestLine(r.In) {
				t.Errorf("%s: %s\n  line: %s", filepath.Base(path), p, truncate(r.In))
			}
		}
	}
	var missing []string
	for m := range ct.Methods {
		if seen[m] == 0 {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("methods never sent in the tests: %v", missing)
	}
	t.Logf("checked %d requests over %d methods", checked, len(seen))
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func TestContractCheckerCatchesMistakes(t *testing.T) {
	ct := mustContract(t)
	bad := []string{
		`{"jsonrpc":"2.0","id":1,"method":"exec","params":{}}`,                                          // command missing
		`{"jsonrpc":"2.0","id":1,"method":"exec","params":{"command":"x","cwd":"/"}}`,                   // unknown field
		`{"jsonrpc":"2.0","id":1,"method":"write_file","params":{"path":"/a","content":"!!"}}`,          // not base64
		`{"jsonrpc":"2.0","id":1,"method":"write_file","params":{"path":"/a","content":"","mode":1.5}}`, // mode not integer
		`{"jsonrpc":"2.0","id":"1","method":"log"}`,                                                     // string id
		`{"jsonrpc":"2.0","id":1,"method":"create","params":{"image":"i","id":"x"}}`,                    // forbidden
		`{"jsonrpc":"2.0","id":1,"method":"frobnicate"}`,                                                // unknown method
	}
	for _, line := range bad {
		if len(ct.checkRequestLine([]byte(line))) == 0 {
			t.Errorf("checker accepted %s", line)
		}
	}
	good := `{"jsonrpc":"2.0","id":7,"method":"exec_tty","params":{"command":["sh","-c","x"],"rows":24,"cols":80}}`
	if p := ct.checkRequestLine([]byte(good)); len(p) != 0 {
		t.Errorf("checker refused %s: %v", good, p)
	}
}

func TestContractErrorCodes(t *testing.T) {
	ct := mustContract(t)
	want := map[string]int{
		"parse_error": ErrCodeParse, "invalid_request": ErrCodeInvalidRequest, "method_not_found": ErrCodeMethodNotFound,
		"invalid_params": ErrCodeInvalidParams, "internal_error": ErrCodeInternal, "vm_failed": ErrCodeVMFailed,
		"exec_failed": ErrCodeExecFailed, "file_failed": ErrCodeFileFailed, "cancelled": ErrCodeCancelled,
	}
	if len(ct.Errors) != len(want) {
		t.Errorf("contract has %d error codes, SDK knows %d", len(ct.Errors), len(want))
	}
	for name, code := range ct.Errors {
		if want[name] != code {
			t.Errorf("%s: contract %d, SDK %d", name, code, want[name])
		}
	}
}

// TestContractResultsAccepted: the fake answers with results and
// notifications generated from the contract alone; every SDK call must
// accept them.
func TestContractResultsAccepted(t *testing.T) {
	c, _ := newFakeClient(t, "contract_results")
	ctx := testCtx(t)
	id, err := c.Launch(New("busybox"))
	if err != nil || id != "x" {
		t.Fatalf("create: %q %v", id, err)
	}
	r, err := c.Exec(ctx, "x")
	if err != nil || r.Stdout != "x" || r.Stderr != "x" || r.ExitCode != 1 || r.DurationMS != 1 {
		t.Fatalf("exec: %+v %v", r, err)
	}
	var out, errOut bytes.Buffer
	sr, err := c.ExecStream(ctx, "x", &out, &errOut)
	if err != nil || out.String() != "x" || errOut.String() != "x" || sr.ExitCode != 1 {
		t.Fatalf("exec_stream: %+v %q %q %v", sr, out.String(), errOut.String(), err)
	}
	var pout, perr syncBuffer
	pr, err := c.ExecPipe(ctx, "x", ExecPipeOptions{Stdout: &pout, Stderr: &perr})
	if err != nil || pout.String() != "x" || perr.String() != "x" || pr.ExitCode != 1 {
		t.Fatalf("exec_pipe: %+v %v", pr, err)
	}
	var tout syncBuffer
	tr, err := c.ExecInteractive(ctx, "x", ExecInteractiveOptions{Stdout: &tout})
	if err != nil || tout.String() != "x" || tr.ExitCode != 1 {
		t.Fatalf("exec_tty: %+v %v", tr, err)
	}
	if err := c.WriteFile(ctx, "/x", []byte("x")); err != nil {
		t.Fatalf("write_file: %v", err)
	}
	if data, err := c.ReadFile(ctx, "/x"); err != nil || string(data) != "x" {
		t.Fatalf("read_file: %q %v", data, err)
	}
	files, err := c.ListFiles(ctx, "/")
	if err != nil || len(files) != 1 || files[0].Name != "x" || files[0].Size != 1 || !files[0].IsDir {
		t.Fatalf("list_files: %+v %v", files, err)
	}
	b, err := c.PortForward(ctx, "1")
	if err != nil || len(b) != 1 || b[0].Address != "x" || b[0].LocalPort != 1 {
		t.Fatalf("port_forward: %+v %v", b, err)
	}
	up, err := c.AllowListAdd(ctx, "x")
	if err != nil || len(up.Added) != 1 || len(up.AllowedHosts) != 1 {
		t.Fatalf("allow_list_add: %+v %v", up, err)
	}
	up, err = c.AllowListDelete(ctx, "x")
	if err != nil || len(up.Removed) != 1 {
		t.Fatalf("allow_list_delete: %+v %v", up, err)
	}
	if log, err := c.Log(ctx); err != nil || log != "x" {
		t.Fatalf("log: %q %v", log, err)
	}
	var lout syncBuffer
	if err := c.LogStream(ctx, &lout); err != nil || lout.String() != "x" {
		t.Fatalf("log_stream: %q %v", lout.String(), err)
	}
	if res, err := c.sendRequest("cancel", map[string]uint64{"id": 999}); err != nil || !strings.Contains(string(res), "cancelled") {
		t.Fatalf("cancel: %s %v", res, err)
	}
	if err := c.Close(0); err != nil {
		t.Fatalf("close: %v", err)
	}
}
