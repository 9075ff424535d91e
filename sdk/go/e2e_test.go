package sdk

// End-to-end test against the real `$MATCHLOCK_BIN rpc` with image busybox.
// It runs only with MATCHLOCK_E2E=1 (it boots a VM).

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestE2EBusybox(t *testing.T) {
	if os.Getenv("MATCHLOCK_E2E") != "1" {
		t.Skip("end-to-end test skipped: set MATCHLOCK_E2E=1 (and MATCHLOCK_BIN) to run it against a real matchlock")
	}
	if os.Getenv("SDK_FAKE_MATCHLOCK") != "" {
		t.Fatal("SDK_FAKE_MATCHLOCK must not be set for the end-to-end test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	client, err := NewClient(DefaultConfig())
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	removed := false
	defer func() {
		_ = client.Close(0)
		if !removed {
			_ = client.Remove()
		}
	}()

	id, err := client.Launch(New("busybox"))
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	if id == "" || client.VMID() != id {
		t.Fatalf("sandbox id %q / %q", id, client.VMID())
	}

	r, err := client.Exec(ctx, "echo hello")
	if err != nil || r.ExitCode != 0 || r.Stdout != "hello\n" {
		t.Fatalf("exec: %+v %v", r, err)
	}

	var out, errOut bytes.Buffer
	sr, err := client.ExecStream(ctx, "echo out; echo err >&2; exit 3", &out, &errOut)
	if err != nil || sr.ExitCode != 3 || out.String() != "out\n" || errOut.String() != "err\n" {
		t.Fatalf("exec_stream: %+v %q %q %v", sr, out.String(), errOut.String(), err)
	}

	input := bytes.Repeat([]byte("line of stdin\n"), 1000)
	var pout syncBuffer
	pr, err := client.ExecPipe(ctx, "cat", ExecPipeOptions{Stdin: bytes.NewReader(input), Stdout: &pout})
	if err != nil || pr.ExitCode != 0 || !bytes.Equal(pout.Bytes(), input) {
		t.Fatalf("exec_pipe: %+v (%d of %d bytes) %v", pr, len(pout.Bytes()), len(input), err)
	}

	content := make([]byte, 256*4)
	for i := range content {
		content[i] = byte(i)
	}
	if err := client.WriteFileMode(ctx, "/tmp/e2e/bin.dat", content, 0o600); err != nil {
		t.Fatalf("write_file: %v", err)
	}
	got, err := client.ReadFile(ctx, "/tmp/e2e/bin.dat")
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("read_file: %d bytes, %v", len(got), err)
	}
	files, err := client.ListFiles(ctx, "/tmp/e2e")
	if err != nil {
		t.Fatalf("list_files: %v", err)
	}
	found := false
	for _, f := range files {
		if f.Name == "bin.dat" {
			found = true
			if f.Size != int64(len(content)) || f.IsDir || f.Mode&0o777 != 0o600 {
				t.Fatalf("list_files entry %+v", f)
			}
		}
	}
	if !found {
		t.Fatalf("bin.dat not listed: %+v", files)
	}
	if r, err := client.Exec(ctx, "wc -c < /tmp/e2e/bin.dat"); err != nil || strings.TrimSpace(r.Stdout) != "1024" {
		t.Fatalf("guest sees the file: %+v %v", r, err)
	}

	if err := client.Close(0); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := client.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	removed = true
}
