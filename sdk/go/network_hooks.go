package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type compiledNetworkHook struct {
	id       string
	name     string
	phase    string
	timeout  time.Duration
	callback NetworkHookFunc
}

// compileNetworkHooks turns the rules into their wire form. Rules with a Hook
// get callback_id "network_hook_<index+1>" (index over all rules) and are
// returned for the SDK-side callback server. nil rules means no rules.
func compileNetworkHooks(cfg *NetworkInterceptionConfig) ([]map[string]interface{}, map[string]compiledNetworkHook, error) {
	if cfg == nil || len(cfg.Rules) == 0 {
		return nil, nil, nil
	}
	wire := make([]map[string]interface{}, 0, len(cfg.Rules))
	var hooks map[string]compiledNetworkHook
	for i, rule := range cfg.Rules {
		data, err := json.Marshal(rule)
		if err != nil {
			return nil, nil, wrapErr(ErrInvalidNetworkHook, err)
		}
		var m map[string]interface{}
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, nil, wrapErr(ErrInvalidNetworkHook, err)
		}
		if rule.Hook != nil {
			action := strings.ToLower(strings.TrimSpace(rule.Action))
			if action != "" && action != NetworkHookActionAllow {
				return nil, nil, withDetail(ErrInvalidNetworkHook, " %q: callback hooks cannot set action=%q", rule.Name, rule.Action)
			}
			id := fmt.Sprintf("network_hook_%d", i+1)
			m["callback_id"] = id
			if hooks == nil {
				hooks = make(map[string]compiledNetworkHook)
			}
			h := compiledNetworkHook{
				id:       id,
				name:     rule.Name,
				phase:    strings.ToLower(strings.TrimSpace(rule.Phase)),
				callback: rule.Hook,
			}
			if rule.TimeoutMS > 0 {
				h.timeout = time.Duration(rule.TimeoutMS) * time.Millisecond
			}
			hooks[id] = h
		}
		wire = append(wire, m)
	}
	return wire, hooks, nil
}

// startNetworkHookServer listens on a fresh UNIX socket in a private
// temporary directory and serves one callback per connection.
func (c *Client) startNetworkHookServer(hooks map[string]compiledNetworkHook) (string, error) {
	dir, err := os.MkdirTemp("", "matchlock-network-hook-")
	if err != nil {
		return "", err
	}
	socketPath := filepath.Join(dir, "hook.sock")
	ln, err := net.Listen("unix", socketPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	c.networkHookMu.Lock()
	c.networkHookListener = ln
	c.networkHookTempDir = dir
	c.networkHookMu.Unlock()

	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			go serveNetworkHookConn(conn, hooks)
		}
	}()
	return socketPath, nil
}

func (c *Client) stopNetworkHookServer() {
	c.networkHookMu.Lock()
	ln, dir := c.networkHookListener, c.networkHookTempDir
	c.networkHookListener, c.networkHookTempDir = nil, ""
	c.networkHookMu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// hookCallbackRequest is the host's HookCallbackRequest.
type hookCallbackRequest struct {
	CallbackID      string              `json:"callback_id"`
	Phase           string              `json:"phase"`
	Host            string              `json:"host"`
	Method          string              `json:"method"`
	Path            string              `json:"path"`
	Query           map[string]string   `json:"query,omitempty"`
	RequestHeaders  map[string][]string `json:"request_headers,omitempty"`
	StatusCode      int                 `json:"status_code,omitempty"`
	ResponseHeaders map[string][]string `json:"response_headers,omitempty"`
	IsSSE           bool                `json:"is_sse,omitempty"`
}

// hookCallbackReply is the SDK's HookCallbackReply.
type hookCallbackReply struct {
	Action   string                `json:"action,omitempty"`
	Request  *hookRequestMutation  `json:"request,omitempty"`
	Response *hookResponseMutation `json:"response,omitempty"`
	Error    string                `json:"error,omitempty"`
}

type hookRequestMutation struct {
	Headers map[string][]string `json:"headers,omitempty"`
	Query   map[string]string   `json:"query,omitempty"`
	Path    string              `json:"path,omitempty"`
}

type hookResponseMutation struct {
	Headers          map[string][]string    `json:"headers,omitempty"`
	BodyReplacements []NetworkBodyTransform `json:"body_replacements,omitempty"`
	SetBodyBase64    *string                `json:"set_body_base64,omitempty"`
}

func serveNetworkHookConn(conn net.Conn, hooks map[string]compiledNetworkHook) {
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	reply := answerHookCallback(json.NewDecoder(conn), hooks)
	data, err := json.Marshal(reply)
	if err != nil {
		data, _ = json.Marshal(hookCallbackReply{Error: err.Error()})
	}
	_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, _ = conn.Write(append(data, '\n'))
}

func answerHookCallback(dec *json.Decoder, hooks map[string]compiledNetworkHook) (reply hookCallbackReply) {
	var req hookCallbackRequest
	if err := dec.Decode(&req); err != nil {
		return hookCallbackReply{Error: "decode callback request: " + err.Error()}
	}
	hook, ok := hooks[req.CallbackID]
	if !ok || hook.callback == nil {
		return hookCallbackReply{Error: "network hook callback not found: " + req.CallbackID}
	}
	if hook.phase != "" && !strings.EqualFold(hook.phase, req.Phase) {
		return hookCallbackReply{Error: "network hook phase mismatch"}
	}
	ctx := context.Background()
	if hook.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, hook.timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			reply = hookCallbackReply{Error: fmt.Sprintf("network hook panicked: %v", r)}
		}
	}()
	result, err := hook.callback(ctx, NetworkHookRequest{
		Phase:           req.Phase,
		Host:            req.Host,
		Method:          req.Method,
		Path:            req.Path,
		Query:           req.Query,
		RequestHeaders:  req.RequestHeaders,
		StatusCode:      req.StatusCode,
		ResponseHeaders: req.ResponseHeaders,
		IsSSE:           req.IsSSE,
	})
	if err != nil {
		return hookCallbackReply{Error: err.Error()}
	}
	if result == nil {
		return hookCallbackReply{}
	}
	reply.Action = result.Action
	if r := result.Request; r != nil {
		reply.Request = &hookRequestMutation{Headers: r.Headers, Query: r.Query, Path: r.Path}
	}
	if r := result.Response; r != nil {
		reply.Response = &hookResponseMutation{Headers: r.Headers, BodyReplacements: r.BodyReplacements}
		if r.SetBody != nil {
			encoded := base64.StdEncoding.EncodeToString(r.SetBody)
			reply.Response.SetBodyBase64 = &encoded
		}
	}
	return reply
}
