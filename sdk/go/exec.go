package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"sync"
)

// ExecResult is the buffered outcome of Exec.
type ExecResult struct {
	ExitCode int
	// Stdout and Stderr hold the raw bytes the command wrote (Go strings are
	// byte strings: binary output survives unchanged).
	Stdout     string
	Stderr     string
	DurationMS int64
}

// ExecStreamResult is the outcome of ExecStream (output went to the writers).
type ExecStreamResult struct {
	ExitCode   int
	DurationMS int64
}

// ExecPipeResult is the outcome of ExecPipe.
type ExecPipeResult struct {
	ExitCode   int
	DurationMS int64
}

// ExecInteractiveResult is the outcome of ExecInteractive.
type ExecInteractiveResult struct {
	ExitCode   int
	DurationMS int64
}

// ExecOptions are per-command options for ExecWithOptions and
// ExecStreamWithOptions (an extension of the original API).
type ExecOptions struct {
	WorkingDir string
	User       string
	// Env adds variables for this command over the sandbox's.
	Env map[string]string
}

// ExecPipeOptions configures ExecPipe. The zero value runs with no stdin
// (EOF right after the process starts) and discards output.
type ExecPipeOptions struct {
	WorkingDir string
	User       string
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
}

// ExecInteractiveOptions configures ExecInteractive (a PTY in the guest).
type ExecInteractiveOptions struct {
	WorkingDir string
	User       string
	// Rows and Cols size the terminal (default 24x80).
	Rows uint16
	Cols uint16
	// Stdin is sent to the terminal; nil sends EOF at once.
	Stdin io.Reader
	// Stdout receives the terminal output (stdout and stderr merged).
	Stdout io.Writer
	// Resize delivers [rows, cols] updates until closed.
	Resize <-chan [2]uint16
}

// stdinChunkSize is how much stdin goes into one message (as the Python
// client does).
const stdinChunkSize = 4096

func execParams(command string, o ExecOptions) map[string]interface{} {
	p := map[string]interface{}{"command": command}
	if o.WorkingDir != "" {
		p["working_dir"] = o.WorkingDir
	}
	if o.User != "" {
		p["user"] = o.User
	}
	if len(o.Env) > 0 {
		p["env"] = o.Env
	}
	return p
}

// Exec runs command (under /bin/sh -c) and returns its buffered output. When
// ctx ends first, the SDK sends `cancel` for the request and returns ctx.Err().
func (c *Client) Exec(ctx context.Context, command string) (*ExecResult, error) {
	return c.ExecWithOptions(ctx, command, ExecOptions{})
}

// ExecWithDir is Exec in workingDir.
func (c *Client) ExecWithDir(ctx context.Context, command, workingDir string) (*ExecResult, error) {
	return c.ExecWithOptions(ctx, command, ExecOptions{WorkingDir: workingDir})
}

// ExecWithOptions is Exec with a working directory, user and environment.
func (c *Client) ExecWithOptions(ctx context.Context, command string, opts ExecOptions) (*ExecResult, error) {
	result, err := c.sendRequestCtx(ctx, "exec", execParams(command, opts), nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		ExitCode   int    `json:"exit_code"`
		Stdout     string `json:"stdout"`
		Stderr     string `json:"stderr"`
		DurationMS int64  `json:"duration_ms"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, wrapErr(ErrParseExecResult, err)
	}
	stdout, err := base64.StdEncoding.DecodeString(r.Stdout)
	if err != nil {
		return nil, wrapErr(ErrParseExecResult, err)
	}
	stderr, err := base64.StdEncoding.DecodeString(r.Stderr)
	if err != nil {
		return nil, wrapErr(ErrParseExecResult, err)
	}
	return &ExecResult{ExitCode: r.ExitCode, Stdout: string(stdout), Stderr: string(stderr), DurationMS: r.DurationMS}, nil
}

// ExecStream runs command and writes its output to stdout and stderr as it
// arrives (a nil writer discards that stream).
func (c *Client) ExecStream(ctx context.Context, command string, stdout, stderr io.Writer) (*ExecStreamResult, error) {
	return c.ExecStreamWithOptions(ctx, command, ExecOptions{}, stdout, stderr)
}

// ExecStreamWithDir is ExecStream in workingDir.
func (c *Client) ExecStreamWithDir(ctx context.Context, command, workingDir string, stdout, stderr io.Writer) (*ExecStreamResult, error) {
	return c.ExecStreamWithOptions(ctx, command, ExecOptions{WorkingDir: workingDir}, stdout, stderr)
}

// ExecStreamWithOptions is ExecStream with a working directory, user and
// environment.
func (c *Client) ExecStreamWithOptions(ctx context.Context, command string, opts ExecOptions, stdout, stderr io.Writer) (*ExecStreamResult, error) {
	onNotify := func(method string, params json.RawMessage) {
		switch method {
		case "exec_stream.stdout":
			writeChunk(stdout, params)
		case "exec_stream.stderr":
			writeChunk(stderr, params)
		}
	}
	result, err := c.sendRequestCtx(ctx, "exec_stream", execParams(command, opts), onNotify)
	if err != nil {
		return nil, err
	}
	code, dur, err := parseExitResult(result)
	if err != nil {
		return nil, wrapErr(ErrParseExecStreamResult, err)
	}
	return &ExecStreamResult{ExitCode: code, DurationMS: dur}, nil
}

// ExecPipe runs command without a PTY, streaming opts.Stdin to it and its
// output to opts.Stdout / opts.Stderr. Stdin is only sent after the server
// reports the process started (exec_pipe.ready).
func (c *Client) ExecPipe(ctx context.Context, command string, opts ExecPipeOptions) (*ExecPipeResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	params := execParams(command, ExecOptions{WorkingDir: opts.WorkingDir, User: opts.User})
	id := c.nextID()
	ready, markReady := readySignal()
	done := make(chan struct{})
	go c.pumpStdin(ctx, done, ready, id, opts.Stdin, "exec_pipe.stdin", "exec_pipe.stdin_eof")

	onNotify := func(method string, params json.RawMessage) {
		switch method {
		case "exec_pipe.ready":
			markReady()
		case "exec_pipe.stdout":
			writeChunk(opts.Stdout, params)
		case "exec_pipe.stderr":
			writeChunk(opts.Stderr, params)
		}
	}
	result, err := c.sendRequestWithID(ctx, id, "exec_pipe", params, onNotify)
	close(done)
	if err != nil {
		return nil, err
	}
	code, dur, err := parseExitResult(result)
	if err != nil {
		return nil, wrapErr(ErrParseExecPipeResult, err)
	}
	return &ExecPipeResult{ExitCode: code, DurationMS: dur}, nil
}

// ExecInteractive runs command on a PTY in the guest (like `exec -it`).
func (c *Client) ExecInteractive(ctx context.Context, command string, opts ExecInteractiveOptions) (*ExecInteractiveResult, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	rows, cols := opts.Rows, opts.Cols
	if rows == 0 {
		rows = 24
	}
	if cols == 0 {
		cols = 80
	}
	params := execParams(command, ExecOptions{WorkingDir: opts.WorkingDir, User: opts.User})
	params["rows"] = rows
	params["cols"] = cols

	id := c.nextID()
	ready, markReady := readySignal()
	done := make(chan struct{})
	go c.pumpStdin(ctx, done, ready, id, opts.Stdin, "exec_tty.stdin", "exec_tty.stdin_eof")
	go c.pumpResize(ctx, done, ready, id, opts.Resize)

	onNotify := func(method string, params json.RawMessage) {
		switch method {
		case "exec_tty.ready":
			markReady()
		case "exec_tty.stdout":
			writeChunk(opts.Stdout, params)
		}
	}
	result, err := c.sendRequestWithID(ctx, id, "exec_tty", params, onNotify)
	close(done)
	if err != nil {
		return nil, err
	}
	code, dur, err := parseExitResult(result)
	if err != nil {
		return nil, wrapErr(ErrParseExecTTYResult, err)
	}
	return &ExecInteractiveResult{ExitCode: code, DurationMS: dur}, nil
}

func readySignal() (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}

// pumpStdin waits for ready, then sends stdin in base64 chunks and finally
// the EOF message. It gives up when the request ends first.
func (c *Client) pumpStdin(ctx context.Context, done, ready <-chan struct{}, id uint64, stdin io.Reader, chunkMethod, eofMethod string) {
	select {
	case <-ready:
	case <-done:
		return
	case <-ctx.Done():
		return
	}
	if stdin != nil {
		buf := make([]byte, stdinChunkSize)
		for {
			n, err := stdin.Read(buf)
			select {
			case <-done:
				return
			default:
			}
			if n > 0 {
				if c.sendUnanswered(chunkMethod, map[string]interface{}{
					"id":   id,
					"data": base64.StdEncoding.EncodeToString(buf[:n]),
				}) != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
	}
	_ = c.sendUnanswered(eofMethod, map[string]interface{}{"id": id})
}

func (c *Client) pumpResize(ctx context.Context, done, ready <-chan struct{}, id uint64, resize <-chan [2]uint16) {
	if resize == nil {
		return
	}
	select {
	case <-ready:
	case <-done:
		return
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case size, ok := <-resize:
			if !ok {
				return
			}
			_ = c.sendUnanswered("exec_tty.resize", map[string]interface{}{"id": id, "rows": size[0], "cols": size[1]})
		}
	}
}

// writeChunk decodes a notification's base64 `data` into w.
func writeChunk(w io.Writer, params json.RawMessage) {
	if w == nil {
		return
	}
	var chunk struct {
		Data string `json:"data"`
	}
	if json.Unmarshal(params, &chunk) != nil {
		return
	}
	data, err := base64.StdEncoding.DecodeString(chunk.Data)
	if err != nil || len(data) == 0 {
		return
	}
	_, _ = w.Write(data)
}

func parseExitResult(result json.RawMessage) (int, int64, error) {
	var r struct {
		ExitCode   int   `json:"exit_code"`
		DurationMS int64 `json:"duration_ms"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return 0, 0, err
	}
	return r.ExitCode, r.DurationMS, nil
}

// Log returns the sandbox log (the entrypoint's output under Launch).
func (c *Client) Log(ctx context.Context) (string, error) {
	result, err := c.sendRequestCtx(ctx, "log", nil, nil)
	if err != nil {
		return "", err
	}
	var r struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return "", wrapErr(ErrParseLogResult, err)
	}
	if r.Content == nil {
		return "", ErrParseLogResult
	}
	// The original clients base64-decode content; a server sending plain text
	// is accepted too.
	if data, err := base64.StdEncoding.DecodeString(*r.Content); err == nil {
		return string(data), nil
	}
	return *r.Content, nil
}

// LogStream writes the sandbox log to stdout and keeps following it until
// ctx ends (the SDK then cancels the request and returns ctx.Err()).
func (c *Client) LogStream(ctx context.Context, stdout io.Writer) error {
	onNotify := func(method string, params json.RawMessage) {
		if method == "log_stream.data" {
			writeChunk(stdout, params)
		}
	}
	_, err := c.sendRequestCtx(ctx, "log_stream", nil, onNotify)
	return err
}
