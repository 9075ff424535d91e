// exec_modes: buffered exec, streaming exec, pipe mode with stdin, and an
// interactive PTY session with a resize.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"matchlock/examples/internal/exampleenv"
	"matchlock/sdk"
)

func main() {
	client, cleanup, err := exampleenv.Start()
	if err != nil {
		exampleenv.Fail("start", err)
	}
	defer cleanup()
	if _, err := client.Launch(sdk.New(exampleenv.Image).WithMemory(256)); err != nil {
		exampleenv.Fail("launch", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Buffered.
	r, err := client.Exec(ctx, "uname -s; id -u")
	if err != nil {
		exampleenv.Fail("exec", err)
	}
	fmt.Printf("exec: exit=%d stdout=%q\n", r.ExitCode, r.Stdout)

	// Streaming: output arrives while the command runs.
	fmt.Println("exec_stream:")
	sr, err := client.ExecStream(ctx, "for i in 1 2 3; do echo tick $i; sleep 0.2; done; echo done >&2", os.Stdout, os.Stderr)
	if err != nil {
		exampleenv.Fail("exec_stream", err)
	}
	fmt.Printf("exec_stream: exit=%d in %d ms\n", sr.ExitCode, sr.DurationMS)

	// Pipe: stdin from the host, stdout/stderr back, no PTY.
	var sorted bytes.Buffer
	pr, err := client.ExecPipe(ctx, "sort -r", sdk.ExecPipeOptions{
		Stdin:  strings.NewReader("apple\ncherry\nbanana\n"),
		Stdout: &sorted,
		Stderr: os.Stderr,
	})
	if err != nil {
		exampleenv.Fail("exec_pipe", err)
	}
	fmt.Printf("exec_pipe: exit=%d sorted=%q\n", pr.ExitCode, sorted.String())

	// Interactive: a shell on a PTY, fed a script, resized once.
	stdinR, stdinW := io.Pipe()
	resize := make(chan [2]uint16, 1)
	go func() {
		resize <- [2]uint16{40, 120}
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(stdinW, "stty size\n")
		_, _ = io.WriteString(stdinW, "exit 7\n")
		_ = stdinW.Close()
	}()
	var screen bytes.Buffer
	ir, err := client.ExecInteractive(ctx, "sh", sdk.ExecInteractiveOptions{
		Rows: 24, Cols: 80, Stdin: stdinR, Stdout: &screen, Resize: resize,
	})
	if err != nil {
		exampleenv.Fail("exec_tty", err)
	}
	fmt.Printf("exec_tty: exit=%d\n--- screen ---\n%s\n--------------\n", ir.ExitCode, screen.String())
}
