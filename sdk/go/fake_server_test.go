package sdk

// A fake `matchlock` for the unit tests: TestMain re-executes the test binary
// with SDK_FAKE_MATCHLOCK=1, and it then plays `matchlock rpc` (scripted
// answers, selected by FAKE_SCENARIO) or the CLI commands rm/volume. Every
// message it receives is appended to FAKE_RECORD for the contract test.

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

type fakeServer struct {
	outMu    sync.Mutex
	out      *bufio.Writer
	record   string
	scenario string

	mu        sync.Mutex
	files     map[string]fakeFile
	allowed   []string
	readySent map[uint64]bool
	violation map[uint64]string
	pipes     map[uint64]*fakePipe
	waiting   map[uint64]string // request id -> method, answered on cancel
}

type fakeFile struct {
	data []byte
	mode uint32
}

type fakePipe struct {
	method string
	resize int
}

type fakeMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      *uint64         `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

func runFakeMatchlock() int {
	args := os.Args[1:]
	f := &fakeServer{
		out:       bufio.NewWriter(os.Stdout),
		record:    os.Getenv("FAKE_RECORD"),
		scenario:  os.Getenv("FAKE_SCENARIO"),
		files:     map[string]fakeFile{},
		readySent: map[uint64]bool{},
		violation: map[uint64]string{},
		pipes:     map[uint64]*fakePipe{},
		waiting:   map[uint64]string{},
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "fake matchlock: no command")
		return 2
	}
	switch args[0] {
	case "rpc":
		return f.serveRPC()
	default:
		return f.cli(args)
	}
}

func (f *fakeServer) appendRecord(v interface{}) {
	if f.record == "" {
		return
	}
	data, _ := json.Marshal(v)
	fh, err := os.OpenFile(f.record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer fh.Close()
	_, _ = fh.Write(append(data, '\n'))
}

func (f *fakeServer) cli(args []string) int {
	f.appendRecord(map[string]interface{}{"cli": args})
	switch {
	case args[0] == "rm" && len(args) == 2:
		if args[1] == "vm-missing" {
			fmt.Fprintln(os.Stderr, "no such sandbox")
			return 1
		}
		return 0
	case len(args) >= 2 && args[0] == "volume" && args[1] == "create":
		// volume create NAME --size N --json
		if len(args) != 6 || args[3] != "--size" || args[5] != "--json" {
			fmt.Fprintln(os.Stderr, "bad volume create args")
			return 2
		}
		fmt.Printf(`{"name":%q,"size":"%s.0 MB","path":"/var/lib/matchlock/volumes/%s.ext4"}`+"\n", args[2], args[4], args[2])
		return 0
	case len(args) == 3 && args[0] == "volume" && args[1] == "ls" && args[2] == "--json":
		fmt.Println(`[{"name":"data","size":16777216,"path":"/v/data.ext4"},{"name":"cache","size":"32.0 MB","path":"/v/cache.ext4"}]`)
		return 0
	case len(args) == 3 && args[0] == "volume" && args[1] == "rm":
		return 0
	}
	fmt.Fprintln(os.Stderr, "fake matchlock: unknown command", args)
	return 2
}

func (f *fakeServer) send(v interface{}) {
	data, _ := json.Marshal(v)
	f.outMu.Lock()
	defer f.outMu.Unlock()
	_, _ = f.out.Write(append(data, '\n'))
	_ = f.out.Flush()
}

func (f *fakeServer) result(id uint64, result interface{}) {
	f.send(map[string]interface{}{"jsonrpc": "2.0", "id": id, "result": result})
}

func (f *fakeServer) fail(id uint64, code int, msg string) {
	f.send(map[string]interface{}{"jsonrpc": "2.0", "id": id, "error": map[string]interface{}{"code": code, "message": msg}})
}

func (f *fakeServer) notify(method string, params interface{}) {
	f.send(map[string]interface{}{"jsonrpc": "2.0", "method": method, "params": params})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func (f *fakeServer) serveRPC() int {
	fmt.Fprintln(os.Stderr, "fake matchlock rpc: started")
	if f.scenario == "exit_now" {
		fmt.Fprintln(os.Stderr, "fake matchlock rpc: boom")
		return 3
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		f.appendRecord(map[string]json.RawMessage{"in": line})
		var msg fakeMsg
		if err := json.Unmarshal(line, &msg); err != nil {
			f.send(map[string]interface{}{"jsonrpc": "2.0", "id": nil, "error": map[string]interface{}{"code": -32700, "message": "parse error"}})
			continue
		}
		if msg.ID == nil {
			// The SDK must give every message an id.
			f.appendRecord(map[string]string{"violation": "message without id: " + msg.Method})
			continue
		}
		if stop := f.handle(*msg.ID, msg.Method, msg.Params); stop {
			break
		}
	}
	if f.scenario == "hang_close" {
		time.Sleep(time.Hour)
	}
	return 0
}

func (f *fakeServer) handle(id uint64, method string, raw json.RawMessage) (stop bool) {
	var p map[string]interface{}
	_ = json.Unmarshal(raw, &p)
	if f.scenario == "contract_results" {
		return f.handleContract(id, method, p)
	}
	switch method {
	case "create":
		if img, _ := p["image"].(string); img == "bad-image" {
			f.fail(id, -32000, "pull failed: bad-image")
			return
		}
		f.callHooks(p)
		f.result(id, map[string]interface{}{"id": "vm-fake1234"})
	case "exec":
		f.exec(id, p)
	case "exec_stream":
		// A chunk for another id first: must not reach this request.
		f.notify("exec_stream.stdout", map[string]interface{}{"id": id + 1000, "data": b64("WRONG")})
		f.notify("exec_stream.stdout", map[string]interface{}{"id": id, "data": b64("out-1 ")})
		f.notify("exec_stream.stderr", map[string]interface{}{"id": id, "data": b64("err-1")})
		f.notify("event", map[string]interface{}{"type": "network", "timestamp": 1, "network": map[string]interface{}{"method": "GET", "host": "example.com"}})
		f.notify("exec_stream.stdout", map[string]interface{}{"id": id, "data": b64("out-2")})
		f.result(id, map[string]interface{}{"exit_code": 3, "duration_ms": 12})
	case "exec_pipe", "exec_tty":
		f.mu.Lock()
		f.pipes[id] = &fakePipe{method: method}
		f.mu.Unlock()
		go func() {
			time.Sleep(80 * time.Millisecond)
			f.mu.Lock()
			f.readySent[id] = true
			f.mu.Unlock()
			f.notify(method+".ready", map[string]interface{}{"id": id})
		}()
	case "exec_pipe.stdin", "exec_tty.stdin":
		target := uint64(p["id"].(float64))
		data, _ := base64.StdEncoding.DecodeString(p["data"].(string))
		f.mu.Lock()
		if !f.readySent[target] {
			f.violation[target] = "stdin before ready"
		}
		pipe := f.pipes[target]
		f.mu.Unlock()
		if pipe != nil {
			f.notify(pipe.method+".stdout", map[string]interface{}{"id": target, "data": base64.StdEncoding.EncodeToString(data)})
			if pipe.method == "exec_pipe" {
				f.notify("exec_pipe.stderr", map[string]interface{}{"id": target, "data": b64(fmt.Sprintf("[%d]", len(data)))})
			}
		}
	case "exec_tty.resize":
		target := uint64(p["id"].(float64))
		f.mu.Lock()
		if pipe := f.pipes[target]; pipe != nil {
			pipe.resize = int(p["rows"].(float64))*1000 + int(p["cols"].(float64))
		}
		f.mu.Unlock()
	case "exec_pipe.stdin_eof", "exec_tty.stdin_eof":
		target := uint64(p["id"].(float64))
		f.mu.Lock()
		v, ready, pipe := f.violation[target], f.readySent[target], f.pipes[target]
		delete(f.pipes, target)
		f.mu.Unlock()
		switch {
		case !ready:
			f.fail(target, -32603, "stdin_eof before ready")
		case v != "":
			f.fail(target, -32603, v)
		case pipe != nil && pipe.method == "exec_tty":
			time.Sleep(30 * time.Millisecond) // let resizes in flight land first
			f.result(target, map[string]interface{}{"exit_code": pipe.resize % 256, "duration_ms": 7})
		default:
			f.result(target, map[string]interface{}{"exit_code": 0, "duration_ms": 7})
		}
	case "write_file":
		data, err := base64.StdEncoding.DecodeString(p["content"].(string))
		if err != nil {
			f.fail(id, -32602, "content is not base64")
			return
		}
		mode := uint32(0)
		if m, ok := p["mode"].(float64); ok {
			mode = uint32(m)
		}
		f.mu.Lock()
		f.files[p["path"].(string)] = fakeFile{data: data, mode: mode}
		f.mu.Unlock()
		f.result(id, map[string]interface{}{})
	case "read_file":
		f.mu.Lock()
		file, ok := f.files[p["path"].(string)]
		f.mu.Unlock()
		if !ok {
			f.fail(id, -32002, "open "+p["path"].(string)+": no such file or directory")
			return
		}
		f.result(id, map[string]interface{}{"content": base64.StdEncoding.EncodeToString(file.data)})
	case "list_files":
		dir := strings.TrimSuffix(p["path"].(string), "/") + "/"
		var entries []map[string]interface{}
		f.mu.Lock()
		for path, file := range f.files {
			if strings.HasPrefix(path, dir) && !strings.Contains(path[len(dir):], "/") {
				entries = append(entries, map[string]interface{}{
					"name": path[len(dir):], "size": len(file.data), "mode": file.mode,
					"mod_time": "2024-05-01T10:20:30Z", "is_dir": false,
				})
			}
		}
		f.mu.Unlock()
		entries = append(entries, map[string]interface{}{"name": "sub", "size": 4096, "mode": 2147484141, "is_dir": true})
		f.result(id, map[string]interface{}{"files": entries})
	case "port_forward":
		var bindings []map[string]interface{}
		addrs, _ := p["addresses"].([]interface{})
		for _, fw := range p["forwards"].([]interface{}) {
			m := fw.(map[string]interface{})
			for _, a := range addrs {
				bindings = append(bindings, map[string]interface{}{"address": a, "local_port": m["local_port"], "remote_port": m["remote_port"]})
			}
		}
		f.result(id, map[string]interface{}{"bindings": bindings})
	case "allow_list_add", "allow_list_delete":
		var changed []string
		f.mu.Lock()
		for _, h := range p["hosts"].([]interface{}) {
			host := h.(string)
			idx := -1
			for i, a := range f.allowed {
				if a == host {
					idx = i
				}
			}
			if method == "allow_list_add" && idx < 0 {
				f.allowed = append(f.allowed, host)
				changed = append(changed, host)
			}
			if method == "allow_list_delete" && idx >= 0 {
				f.allowed = append(f.allowed[:idx], f.allowed[idx+1:]...)
				changed = append(changed, host)
			}
		}
		allowed := append([]string{}, f.allowed...)
		f.mu.Unlock()
		if changed == nil {
			changed = []string{}
		}
		key := "added"
		if method == "allow_list_delete" {
			key = "removed"
		}
		f.result(id, map[string]interface{}{key: changed, "allowed_hosts": allowed})
	case "log":
		f.result(id, map[string]interface{}{"content": b64("boot: ok\nentrypoint started\n")})
	case "log_stream":
		f.notify("log_stream.data", map[string]interface{}{"id": id, "data": b64("line 1\n")})
		f.notify("log_stream.data", map[string]interface{}{"id": id, "data": b64("line 2\n")})
		f.mu.Lock()
		f.waiting[id] = method
		f.mu.Unlock()
	case "cancel":
		target := uint64(p["id"].(float64))
		f.mu.Lock()
		_, ok := f.waiting[target]
		delete(f.waiting, target)
		f.mu.Unlock()
		if ok {
			f.fail(target, -32003, "cancelled")
		}
		f.result(id, map[string]interface{}{"cancelled": ok})
	case "close":
		if f.scenario == "hang_close" {
			return false // never answer; ignore stdin EOF too
		}
		f.result(id, map[string]interface{}{})
		return true
	default:
		f.fail(id, -32601, "method not found: "+method)
	}
	return false
}

func (f *fakeServer) exec(id uint64, p map[string]interface{}) {
	cmd, _ := p["command"].(string)
	switch {
	case cmd == "echo hello":
		f.result(id, map[string]interface{}{"exit_code": 0, "stdout": b64("hello\n"), "stderr": "", "duration_ms": 3})
	case cmd == "binary":
		all := make([]byte, 256)
		rev := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
			rev[i] = byte(255 - i)
		}
		f.result(id, map[string]interface{}{"exit_code": 0, "stdout": base64.StdEncoding.EncodeToString(all), "stderr": base64.StdEncoding.EncodeToString(rev), "duration_ms": 1})
	case cmd == "pwd":
		wd, _ := p["working_dir"].(string)
		user, _ := p["user"].(string)
		env, _ := json.Marshal(p["env"])
		f.result(id, map[string]interface{}{"exit_code": 0, "stdout": b64(wd + "|" + user + "|" + string(env)), "stderr": "", "duration_ms": 1})
	case cmd == "sleep":
		f.mu.Lock()
		f.waiting[id] = "exec"
		f.mu.Unlock()
	case cmd == "fail":
		f.fail(id, -32001, "exec failed: no such command")
	case cmd == "die":
		fmt.Fprintln(os.Stderr, "fake matchlock rpc: dying on purpose")
		os.Exit(7)
	case cmd == "big":
		big := strings.Repeat("x", 3<<20)
		f.result(id, map[string]interface{}{"exit_code": 0, "stdout": b64(big), "stderr": "", "duration_ms": 1})
	default:
		f.result(id, map[string]interface{}{"exit_code": 127, "stdout": "", "stderr": b64("sh: " + cmd + ": not found\n"), "duration_ms": 1})
	}
}

// callHooks plays the host side of network callback hooks: one connection per
// callback rule, one request, one reply, recorded for the test.
func (f *fakeServer) callHooks(p map[string]interface{}) {
	network, _ := p["network"].(map[string]interface{})
	interception, _ := network["interception"].(map[string]interface{})
	socket, _ := interception["callback_socket"].(string)
	if socket == "" {
		return
	}
	rules, _ := interception["rules"].([]interface{})
	for _, r := range rules {
		rule := r.(map[string]interface{})
		cbID, _ := rule["callback_id"].(string)
		if cbID == "" {
			continue
		}
		phase, _ := rule["phase"].(string)
		if phase == "" {
			phase = "before"
		}
		req := map[string]interface{}{
			"callback_id": cbID, "phase": phase, "host": "api.example.com", "method": "POST",
			"path": "/v1/chat", "query": map[string]string{"q": "1"},
			"request_headers": map[string][]string{"Authorization": {"Bearer x"}, "X-Trace": {"a", "b"}},
		}
		if phase == "after" {
			req["status_code"] = 200
			req["response_headers"] = map[string][]string{"Content-Type": {"text/event-stream"}}
			req["is_sse"] = true
		}
		f.appendRecord(map[string]interface{}{"hook_request": req})
		reply, err := f.callOne(socket, req)
		if err != nil {
			f.appendRecord(map[string]interface{}{"hook_error": err.Error(), "callback_id": cbID})
			continue
		}
		f.appendRecord(map[string]interface{}{"hook_reply": reply, "callback_id": cbID})
	}
	// An unknown callback id must be answered with an error.
	if reply, err := f.callOne(socket, map[string]interface{}{"callback_id": "network_hook_999", "phase": "before", "host": "h", "method": "GET", "path": "/"}); err == nil {
		f.appendRecord(map[string]interface{}{"hook_reply": reply, "callback_id": "network_hook_999"})
	}
}

func (f *fakeServer) callOne(socket string, req interface{}) (json.RawMessage, error) {
	conn, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, err
	}
	var reply json.RawMessage
	if err := json.NewDecoder(conn).Decode(&reply); err != nil {
		return nil, err
	}
	return reply, nil
}
