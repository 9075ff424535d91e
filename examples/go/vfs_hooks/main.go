// vfs_hooks: a host rule the guest cannot get past, and hooks run in this
// process. A host folder is mounted at /workspace (host_fs). The host blocks
// creating /workspace/blocked.txt (the guest gets EPERM); an action hook
// refuses the SDK's own WriteFile to /workspace/secret*.txt; a mutate hook
// rewrites what WriteFile sends to /workspace/notes.txt; an after-hook records
// the host's `write` events under /workspace.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"matchlock/examples/internal/exampleenv"
	"matchlock/sdk"
)

const rewritten = "rewritten by the SDK's mutate hook\n"

type recorder struct {
	mu     sync.Mutex
	events []sdk.VFSHookEvent
}

func (r *recorder) add(e sdk.VFSHookEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) snapshot() []sdk.VFSHookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sdk.VFSHookEvent(nil), r.events...)
}

// waitFor polls until some recorded event has path, for at most 15 s.
func (r *recorder) waitFor(path string) bool {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range r.snapshot() {
			if e.Path == path {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func check(ok bool, what string) error {
	if !ok {
		return errors.New(what)
	}
	fmt.Println("ok:", what)
	return nil
}

func main() {
	folder, err := os.MkdirTemp("", "matchlock-vfs-example-")
	if err != nil {
		exampleenv.Fail("temp folder", err)
	}
	err = run(folder)
	os.RemoveAll(folder)
	if err != nil {
		exampleenv.Fail("vfs_hooks", err)
	}
}

func run(folder string) error {
	client, cleanup, err := exampleenv.Start()
	if err != nil {
		return err
	}
	defer cleanup()

	rec := &recorder{}
	interception := &sdk.VFSInterceptionConfig{Rules: []sdk.VFSHookRule{
		// On the host, for every program in the guest.
		{Name: "no blocked.txt", Phase: sdk.VFSHookPhaseBefore, Ops: []sdk.VFSHookOp{sdk.VFSHookOpCreate}, Path: "/workspace/blocked.txt", Action: sdk.VFSHookActionBlock},
		// In this process, for this SDK's own file calls.
		{Name: "no secrets from the SDK", Ops: []sdk.VFSHookOp{sdk.VFSHookOpWrite}, Path: "/workspace/secret*.txt",
			ActionHook: func(context.Context, sdk.VFSActionRequest) sdk.VFSHookAction { return sdk.VFSHookActionBlock }},
		{Name: "rewrite notes", Path: "/workspace/notes.txt",
			MutateHook: func(context.Context, sdk.VFSMutateRequest) ([]byte, error) { return []byte(rewritten), nil }},
		// After the fact, fed by the host's file events (EmitEvents is turned on for it).
		{Name: "record writes", Phase: sdk.VFSHookPhaseAfter, Ops: []sdk.VFSHookOp{sdk.VFSHookOpWrite}, Path: "/workspace/**",
			Hook: func(_ context.Context, e sdk.VFSHookEvent) error { rec.add(e); return nil }},
	}}
	id, err := client.Launch(sdk.New(exampleenv.Image).MountHostDir("/workspace", folder).WithVFSInterception(interception))
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	fmt.Printf("sandbox %s is up, /workspace is %s\n", id, folder)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	blocked, err := client.Exec(ctx, "echo hi > /workspace/blocked.txt")
	if err != nil {
		return err
	}
	fmt.Println("guest:", strings.TrimSpace(blocked.Stderr))
	if err := check(blocked.ExitCode != 0 && strings.Contains(blocked.Stderr, "Operation not permitted"), "the host rule refused the guest's create of blocked.txt"); err != nil {
		return err
	}
	_, statErr := os.Stat(filepath.Join(folder, "blocked.txt"))
	if err := check(os.IsNotExist(statErr), "nothing reached the host folder"); err != nil {
		return err
	}

	writeErr := client.WriteFile(ctx, "/workspace/secret.txt", []byte("token=123"))
	if err := check(errors.Is(writeErr, sdk.ErrVFSHookBlocked), fmt.Sprintf("the action hook blocked WriteFile (%v)", writeErr)); err != nil {
		return err
	}
	_, statErr = os.Stat(filepath.Join(folder, "secret.txt"))
	if err := check(os.IsNotExist(statErr), "secret.txt was never written"); err != nil {
		return err
	}

	if err := client.WriteFile(ctx, "/workspace/notes.txt", []byte("the original text\n")); err != nil {
		return err
	}
	cat, err := client.Exec(ctx, "cat /workspace/notes.txt")
	if err != nil {
		return err
	}
	fmt.Println("guest: cat notes.txt ->", strings.TrimSpace(cat.Stdout))
	if err := check(cat.Stdout == rewritten, "the mutate hook replaced what WriteFile sent"); err != nil {
		return err
	}
	onHost, _ := os.ReadFile(filepath.Join(folder, "notes.txt"))
	if err := check(string(onHost) == rewritten, "the host folder has the rewritten file"); err != nil {
		return err
	}

	if err := check(rec.waitFor("/workspace/notes.txt"), "the after-hook saw the write of notes.txt"); err != nil {
		return err
	}
	if _, err := client.Exec(ctx, "echo from the guest > /workspace/guest.txt"); err != nil {
		return err
	}
	if err := check(rec.waitFor("/workspace/guest.txt"), "the after-hook saw the guest's own write of guest.txt"); err != nil {
		return err
	}
	refusedSeen := false
	for _, e := range rec.snapshot() {
		fmt.Printf("  event: %s %s (%d bytes)\n", e.Op, e.Path, e.Size)
		refusedSeen = refusedSeen || strings.Contains(e.Path, "blocked") || strings.Contains(e.Path, "secret")
	}
	return check(!refusedSeen, "refused operations are not events")
}
