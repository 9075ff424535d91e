// port_forward: run an HTTP server inside the sandbox and reach it from the
// host through a forwarded port.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"matchlock/examples/internal/exampleenv"
	"matchlock/sdk"
)

func main() {
	localPort := 18080
	if v := os.Getenv("MATCHLOCK_EXAMPLE_LOCAL_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			exampleenv.Fail("MATCHLOCK_EXAMPLE_LOCAL_PORT", err)
		}
		localPort = p
	}
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

	setup := `mkdir -p /srv/www && echo "hello from the sandbox" > /srv/www/index.html && (httpd -f -p 8080 -h /srv/www >/dev/null 2>&1 &)`
	if r, err := client.Exec(ctx, setup); err != nil || r.ExitCode != 0 {
		exampleenv.Fail("httpd", fmt.Errorf("%v %+v", err, r))
	}
	bindings, err := client.PortForward(ctx, fmt.Sprintf("%d:8080", localPort))
	if err != nil {
		exampleenv.Fail("port_forward", err)
	}
	for _, b := range bindings {
		fmt.Printf("forwarding %s:%d -> sandbox:%d\n", b.Address, b.LocalPort, b.RemotePort)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", localPort)
	var body []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			exampleenv.Fail("GET "+url, fmt.Errorf("no answer: %v", err))
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Printf("GET %s -> %s", url, body)
}
