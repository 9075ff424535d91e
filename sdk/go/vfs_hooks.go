package sdk

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type vfsMatcher struct {
	name string
	ops  map[string]struct{}
	path string
}

func newVFSMatcher(rule VFSHookRule) vfsMatcher {
	m := vfsMatcher{name: rule.Name, path: rule.Path}
	for _, op := range rule.Ops {
		if op == "" {
			continue
		}
		if m.ops == nil {
			m.ops = make(map[string]struct{})
		}
		m.ops[strings.ToLower(op)] = struct{}{}
	}
	return m
}

func (m vfsMatcher) matches(op, path string) bool {
	if len(m.ops) > 0 {
		if _, ok := m.ops[strings.ToLower(op)]; !ok {
			return false
		}
	}
	if m.path == "" {
		return true
	}
	ok, err := filepath.Match(m.path, path)
	return err == nil && ok
}

type compiledAfterHook struct {
	vfsMatcher
	timeout   time.Duration
	dangerous bool
	callback  func(ctx context.Context, client *Client, event VFSHookEvent) error
}

type compiledMutateHook struct {
	vfsMatcher
	callback VFSMutateHookFunc
}

type compiledActionHook struct {
	vfsMatcher
	callback VFSActionHookFunc
}

type compiledVFSHooks struct {
	after  []compiledAfterHook
	mutate []compiledMutateHook
	action []compiledActionHook
}

// vfsHookState holds the hooks of the current sandbox.
type vfsHookState struct {
	mu     sync.RWMutex
	hooks  *compiledVFSHooks
	active atomic.Bool // a safe after-hook batch is running
}

func (s *vfsHookState) set(h *compiledVFSHooks) {
	s.mu.Lock()
	s.hooks = h
	s.mu.Unlock()
	s.active.Store(false)
}

func (s *vfsHookState) reset() { s.set(nil) }

func (s *vfsHookState) get() *compiledVFSHooks {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hooks
}

func actionIsAllowOrEmpty(a string) bool {
	a = strings.ToLower(strings.TrimSpace(a))
	return a == "" || a == VFSHookActionAllow
}

// compileVFSHooks splits rules into the ones sent to the server and the
// SDK-side callbacks. emit_events is forced on when there are after-hooks.
func compileVFSHooks(cfg *VFSInterceptionConfig) (*VFSInterceptionConfig, *compiledVFSHooks, error) {
	if cfg == nil {
		return nil, nil, nil
	}
	wire := &VFSInterceptionConfig{EmitEvents: cfg.EmitEvents, Rules: []VFSHookRule{}}
	local := &compiledVFSHooks{}
	for _, rule := range cfg.Rules {
		n := 0
		for _, set := range []bool{rule.Hook != nil, rule.DangerousHook != nil, rule.MutateHook != nil, rule.ActionHook != nil} {
			if set {
				n++
			}
		}
		if n > 1 {
			return nil, nil, withDetail(ErrInvalidVFSHook, " %q cannot set more than one callback hook", rule.Name)
		}
		phase := strings.ToLower(strings.TrimSpace(rule.Phase))
		switch {
		case n == 0:
			if strings.EqualFold(strings.TrimSpace(rule.Action), "mutate_write") {
				return nil, nil, withDetail(ErrInvalidVFSHook, " %q mutate_write requires MutateHook callback", rule.Name)
			}
			wire.Rules = append(wire.Rules, rule)
		case rule.Hook != nil || rule.DangerousHook != nil:
			if !actionIsAllowOrEmpty(rule.Action) {
				return nil, nil, withDetail(ErrInvalidVFSHook, " %q callback hooks cannot set action=%q", rule.Name, rule.Action)
			}
			if phase != VFSHookPhaseAfter {
				return nil, nil, withDetail(ErrInvalidVFSHook, " %q must use phase=after", rule.Name)
			}
			h := compiledAfterHook{vfsMatcher: newVFSMatcher(rule)}
			if rule.TimeoutMS > 0 {
				h.timeout = time.Duration(rule.TimeoutMS) * time.Millisecond
			}
			if rule.Hook != nil {
				fn := rule.Hook
				h.callback = func(ctx context.Context, _ *Client, e VFSHookEvent) error { return fn(ctx, e) }
			} else {
				h.dangerous = true
				h.callback = rule.DangerousHook
			}
			local.after = append(local.after, h)
		case rule.MutateHook != nil:
			if !actionIsAllowOrEmpty(rule.Action) {
				return nil, nil, withDetail(ErrInvalidVFSHook, " %q mutate hooks cannot set action=%q", rule.Name, rule.Action)
			}
			if phase != "" && phase != VFSHookPhaseBefore {
				return nil, nil, withDetail(ErrInvalidVFSHook, " %q mutate hook must use phase=before", rule.Name)
			}
			local.mutate = append(local.mutate, compiledMutateHook{vfsMatcher: newVFSMatcher(rule), callback: rule.MutateHook})
		default:
			if !actionIsAllowOrEmpty(rule.Action) {
				return nil, nil, withDetail(ErrInvalidVFSHook, " %q action hooks cannot set action=%q", rule.Name, rule.Action)
			}
			if phase != "" && phase != VFSHookPhaseBefore {
				return nil, nil, withDetail(ErrInvalidVFSHook, " %q action hook must use phase=before", rule.Name)
			}
			local.action = append(local.action, compiledActionHook{vfsMatcher: newVFSMatcher(rule), callback: rule.ActionHook})
		}
	}
	if len(local.after) > 0 {
		wire.EmitEvents = true
	}
	if len(wire.Rules) == 0 {
		wire.Rules = nil
		if !wire.EmitEvents {
			wire = nil
		}
	}
	if len(local.after) == 0 && len(local.mutate) == 0 && len(local.action) == 0 {
		local = nil
	}
	return wire, local, nil
}

// handleEvent runs after-hooks for `event` notifications carrying a file.
func (c *Client) handleEvent(params json.RawMessage) {
	hooks := c.vfs.get()
	if hooks == nil || len(hooks.after) == 0 {
		return
	}
	var ev struct {
		File *struct {
			Op   string `json:"op"`
			Path string `json:"path"`
			Size int64  `json:"size"`
			Mode uint32 `json:"mode"`
			UID  int    `json:"uid"`
			GID  int    `json:"gid"`
		} `json:"file"`
	}
	if err := json.Unmarshal(params, &ev); err != nil || ev.File == nil {
		return
	}
	event := VFSHookEvent{Op: strings.ToLower(ev.File.Op), Path: ev.File.Path, Size: ev.File.Size, Mode: ev.File.Mode, UID: ev.File.UID, GID: ev.File.GID}
	c.runAfterHooks(hooks.after, event)
}

func (c *Client) runAfterHooks(hooks []compiledAfterHook, event VFSHookEvent) {
	var safe []compiledAfterHook
	for _, h := range hooks {
		if !h.matches(event.Op, event.Path) {
			continue
		}
		if h.dangerous {
			go c.runAfterHook(h, event)
			continue
		}
		safe = append(safe, h)
	}
	if len(safe) == 0 || !c.vfs.active.CompareAndSwap(false, true) {
		return // no safe hooks, or a batch is running: do not re-trigger
	}
	go func() {
		defer c.vfs.active.Store(false)
		for _, h := range safe {
			c.runAfterHook(h, event)
		}
	}()
}

func (c *Client) runAfterHook(h compiledAfterHook, event VFSHookEvent) {
	ctx := context.Background()
	if h.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	defer func() { _ = recover() }()
	_ = h.callback(ctx, c, event)
}

// applyActionHooks returns an ErrVFSHookBlocked error when a hook blocks op.
func (c *Client) applyActionHooks(ctx context.Context, op VFSHookOp, path string, size int, mode uint32) error {
	hooks := c.vfs.get()
	if hooks == nil {
		return nil
	}
	req := VFSActionRequest{Op: op, Path: path, Size: size, Mode: mode, UID: os.Geteuid(), GID: os.Getegid()}
	for _, h := range hooks.action {
		if !h.matches(op, path) {
			continue
		}
		switch decision := strings.ToLower(strings.TrimSpace(h.callback(ctx, req))); decision {
		case "", VFSHookActionAllow:
		case VFSHookActionBlock:
			return withDetail(ErrVFSHookBlocked, " op=%s path=%s hook=%q", op, path, h.name)
		default:
			return withDetail(ErrInvalidVFSHook, " %q returned invalid action decision %q", h.name, decision)
		}
	}
	return nil
}

// applyMutateHooks runs the write mutate hooks in order over content.
func (c *Client) applyMutateHooks(ctx context.Context, path string, content []byte, mode uint32) ([]byte, error) {
	hooks := c.vfs.get()
	if hooks == nil {
		return content, nil
	}
	current := content
	for _, h := range hooks.mutate {
		if !h.matches(VFSHookOpWrite, path) {
			continue
		}
		out, err := h.callback(ctx, VFSMutateRequest{Path: path, Size: len(current), Mode: mode, UID: os.Geteuid(), GID: os.Getegid()})
		if err != nil {
			return nil, err
		}
		if out != nil {
			current = out
		}
	}
	return current, nil
}
