package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// JSON-RPC error codes used by `matchlock rpc`.
const (
	ErrCodeParse          = -32700
	ErrCodeInvalidRequest = -32600
	ErrCodeMethodNotFound = -32601
	ErrCodeInvalidParams  = -32602
	ErrCodeInternal       = -32603
	ErrCodeVMFailed       = -32000
	ErrCodeExecFailed     = -32001
	ErrCodeFileFailed     = -32002
	ErrCodeCancelled      = -32003
)

// RPCError is an error answer from the rpc server.
type RPCError struct {
	Code    int
	Message string
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("matchlock RPC error [%d]: %s", e.Code, e.Message)
}

// IsVMError reports whether the server failed on the VM itself (-32000).
func (e *RPCError) IsVMError() bool { return e.Code == ErrCodeVMFailed }

// IsExecError reports whether a command could not be run (-32001).
func (e *RPCError) IsExecError() bool { return e.Code == ErrCodeExecFailed }

// IsFileError reports whether a file operation failed (-32002).
func (e *RPCError) IsFileError() bool { return e.Code == ErrCodeFileFailed }

// IsCancelled reports whether the request was cancelled (-32003).
func (e *RPCError) IsCancelled() bool { return e.Code == ErrCodeCancelled }

// outgoing is one request line. Params is omitted when nil.
type outgoing struct {
	JSONRPC string      `json:"jsonrpc"`
	Method  string      `json:"method"`
	Params  interface{} `json:"params,omitempty"`
	ID      uint64      `json:"id"`
}

// incoming is any line the server writes: a response (id set) or a
// notification (method set, no id).
type incoming struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type notifyFunc func(method string, params json.RawMessage)

type pendingRequest struct {
	ch       chan pendingResult
	onNotify notifyFunc
}

type pendingResult struct {
	result json.RawMessage
	err    error
}

// nextID hands out request ids; every message the SDK sends carries one.
func (c *Client) nextID() uint64 { return c.requestID.Add(1) }

// writeLine marshals msg and writes it as one line under the write lock.
func (c *Client) writeLine(msg outgoing) error {
	data, err := json.Marshal(msg)
	if err != nil {
		return wrapErr(ErrMarshalRequest, err)
	}
	data = append(data, '\n')
	c.writeMu.Lock()
	_, err = c.stdin.Write(data)
	c.writeMu.Unlock()
	if err != nil {
		return wrapErr(ErrWriteRequest, err)
	}
	return nil
}

// register adds a pending entry for id, or fails when the connection is gone.
func (c *Client) register(id uint64, onNotify notifyFunc) (*pendingRequest, error) {
	p := &pendingRequest{ch: make(chan pendingResult, 1), onNotify: onNotify}
	if c.isClosed() {
		return nil, ErrClientClosed
	}
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	if c.pending == nil {
		if c.connErr != nil {
			return nil, c.connErr
		}
		return nil, ErrClientClosed
	}
	c.pending[id] = p
	return p, nil
}

func (c *Client) unregister(id uint64) {
	c.pendingMu.Lock()
	if c.pending != nil {
		delete(c.pending, id)
	}
	c.pendingMu.Unlock()
}

// sendRequest sends a request that cannot be cancelled by the caller.
func (c *Client) sendRequest(method string, params interface{}) (json.RawMessage, error) {
	return c.sendRequestCtx(context.Background(), method, params, nil)
}

// sendRequestCtx sends a request and waits for its answer. When ctx ends
// first, a `cancel {id}` request is sent for it and ctx.Err() is returned.
func (c *Client) sendRequestCtx(ctx context.Context, method string, params interface{}, onNotify notifyFunc) (json.RawMessage, error) {
	return c.sendRequestWithID(ctx, c.nextID(), method, params, onNotify)
}

func (c *Client) sendRequestWithID(ctx context.Context, id uint64, method string, params interface{}, onNotify notifyFunc) (json.RawMessage, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := c.register(id, onNotify)
	if err != nil {
		return nil, err
	}
	defer c.unregister(id)

	if err := c.writeLine(outgoing{JSONRPC: "2.0", Method: method, Params: params, ID: id}); err != nil {
		return nil, err
	}

	select {
	case r := <-p.ch:
		return r.result, r.err
	case <-ctx.Done():
		c.sendCancel(id)
		return nil, ctx.Err()
	}
}

// sendRequestTimeout waits at most d for the answer and never sends cancel
// (used by Close, whose request must not be cancelled).
func (c *Client) sendRequestTimeout(d time.Duration, method string, params interface{}) (json.RawMessage, error) {
	id := c.nextID()
	p, err := c.register(id, nil)
	if err != nil {
		return nil, err
	}
	defer c.unregister(id)
	if err := c.writeLine(outgoing{JSONRPC: "2.0", Method: method, Params: params, ID: id}); err != nil {
		return nil, err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-p.ch:
		return r.result, r.err
	case <-timer.C:
		return nil, context.DeadlineExceeded
	}
}

// sendCancel asks the server to stop request target. The answer (if any) is
// ignored, as the original clients do.
func (c *Client) sendCancel(target uint64) {
	_ = c.writeLine(outgoing{JSONRPC: "2.0", Method: "cancel", Params: map[string]uint64{"id": target}, ID: c.nextID()})
}

// sendUnanswered sends one of the stdin/eof/resize messages. Like the
// original Python and TypeScript clients it carries a fresh numeric id; the
// server never answers these.
func (c *Client) sendUnanswered(method string, params interface{}) error {
	return c.writeLine(outgoing{JSONRPC: "2.0", Method: method, Params: params, ID: c.nextID()})
}

// readLoop reads stdout line by line and dispatches answers by id and
// notifications by method, until EOF.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	for {
		line, err := c.stdout.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			c.dispatch(line)
		}
		if err != nil {
			c.failPending(err)
			return
		}
	}
}

func (c *Client) dispatch(line []byte) {
	var msg incoming
	if err := json.Unmarshal(line, &msg); err != nil {
		return // not JSON: ignore, as the original does
	}
	id := bytes.TrimSpace(msg.ID)
	if len(id) == 0 || bytes.Equal(id, []byte("null")) {
		if msg.Method != "" {
			c.handleNotification(msg.Method, msg.Params)
		}
		return
	}
	var n uint64
	if err := json.Unmarshal(id, &n); err != nil {
		return // ids we send are numbers; anything else is not ours
	}
	c.pendingMu.Lock()
	p := c.pending[n]
	c.pendingMu.Unlock()
	if p == nil {
		return
	}
	if msg.Error != nil {
		p.deliver(pendingResult{err: &RPCError{Code: msg.Error.Code, Message: msg.Error.Message}})
		return
	}
	result := msg.Result
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	p.deliver(pendingResult{result: result})
}

// deliver hands r to the waiter without ever blocking the reader: only the
// first outcome of a request counts.
func (p *pendingRequest) deliver(r pendingResult) {
	select {
	case p.ch <- r:
	default:
	}
}

// handleNotification routes request-scoped notifications (params.id) to the
// waiting request's callback, and `event` notifications to the VFS hooks.
func (c *Client) handleNotification(method string, params json.RawMessage) {
	switch method {
	case "event":
		c.handleEvent(params)
		return
	}
	var scoped struct {
		ID *uint64 `json:"id"`
	}
	if err := json.Unmarshal(params, &scoped); err != nil || scoped.ID == nil {
		return
	}
	c.pendingMu.Lock()
	p := c.pending[*scoped.ID]
	c.pendingMu.Unlock()
	if p != nil && p.onNotify != nil {
		p.onNotify(method, params)
	}
}

// failPending ends every waiting request with a connection error and refuses
// new ones. cause is the read error (normally io.EOF).
func (c *Client) failPending(cause error) {
	// The process's last words on stderr may still be in flight when stdout ends: give the
	// stderr reader a moment to reach its end, so the error can quote them.
	if c.stderrDone != nil {
		select {
		case <-c.stderrDone:
		case <-time.After(500 * time.Millisecond):
		}
	}
	detail := ""
	if tail := c.stderrTail(); tail != "" {
		detail = fmt.Sprintf(" (matchlock stderr: %s)", tail)
	}
	connErr := withDetailCause(ErrConnectionClose, cause, "%s", detail)
	c.pendingMu.Lock()
	pending := c.pending
	c.pending = nil
	if c.connErr == nil {
		c.connErr = connErr
	}
	c.pendingMu.Unlock()
	for _, p := range pending {
		p.deliver(pendingResult{err: connErr})
	}
}
