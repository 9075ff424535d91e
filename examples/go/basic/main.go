// basic: secret injection. The sandbox only ever sees a placeholder in
// $API_KEY; the host proxy puts the real value into the request to the
// allowed upstream, which echoes the headers it received.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"matchlock/examples/internal/exampleenv"
	"matchlock/sdk"
)

func main() {
	up, err := exampleenv.LoadUpstream()
	if err != nil {
		exampleenv.Fail("upstream", err)
	}
	secret := os.Getenv("MATCHLOCK_EXAMPLE_SECRET")
	if secret == "" {
		secret = "sk-example-real-value"
	}
	client, cleanup, err := exampleenv.Start()
	if err != nil {
		exampleenv.Fail("start", err)
	}
	defer cleanup()

	// A secret travels only over TLS, unless its host is named http://HOST: the example's
	// upstream speaks plain HTTP, so it says so (docs/NETWORK.md "Secrets").
	secretHost := up.Host
	if up.Scheme == "http" {
		secretHost = "http://" + up.Host
	}
	sandbox := up.Reach(sdk.New(exampleenv.Image).
		WithMemory(256).
		AddSecret("API_KEY", secret, secretHost))
	id, err := client.Launch(sandbox)
	if err != nil {
		exampleenv.Fail("launch", err)
	}
	fmt.Println("sandbox:", id)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	seen, err := client.Exec(ctx, `printf %s "$API_KEY"`)
	if err != nil {
		exampleenv.Fail("exec", err)
	}
	fmt.Println("the sandbox sees API_KEY =", seen.Stdout)
	if seen.Stdout == secret {
		exampleenv.Fail("check", fmt.Errorf("the real secret is visible inside the sandbox"))
	}

	cmd := fmt.Sprintf(`wget -q -O - --header "Authorization: Bearer $API_KEY" %s/echo`, up.URL)
	resp, err := client.Exec(ctx, cmd)
	if err != nil {
		exampleenv.Fail("request", err)
	}
	if resp.ExitCode != 0 {
		exampleenv.Fail("request", fmt.Errorf("wget exited %d: %s", resp.ExitCode, resp.Stderr))
	}
	fmt.Println("the upstream received:")
	fmt.Println(resp.Stdout)
	if !strings.Contains(resp.Stdout, "Bearer "+secret) {
		exampleenv.Fail("check", fmt.Errorf("the upstream did not receive the injected secret"))
	}
	fmt.Println("ok: the host injected the secret; the sandbox only had a placeholder")
}
