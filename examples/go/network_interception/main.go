// network_interception: a static rule that rewrites request headers, an SSE
// body transform on the response, and a callback hook that runs in this
// process for every matching request.
package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"matchlock/examples/internal/exampleenv"
	"matchlock/sdk"
)

func main() {
	up, err := exampleenv.LoadUpstream()
	if err != nil {
		exampleenv.Fail("upstream", err)
	}
	client, cleanup, err := exampleenv.Start()
	if err != nil {
		exampleenv.Fail("start", err)
	}
	defer cleanup()

	var hookCalls atomic.Int32
	rules := &sdk.NetworkInterceptionConfig{Rules: []sdk.NetworkHookRule{
		{
			Name:          "headers",
			Phase:         sdk.NetworkHookPhaseBefore,
			Hosts:         []string{up.Host},
			Path:          "/echo",
			SetHeaders:    map[string]string{"X-Sandbox": "matchlock"},
			DeleteHeaders: []string{"X-Remove-Me"},
		},
		{
			Name:             "sse",
			Phase:            sdk.NetworkHookPhaseAfter,
			Hosts:            []string{up.Host},
			Path:             "/sse",
			BodyReplacements: []sdk.NetworkBodyTransform{{Find: "world", Replace: "sandbox"}},
		},
		{
			Name:      "callback",
			Phase:     sdk.NetworkHookPhaseBefore,
			Hosts:     []string{up.Host},
			Path:      "/echo",
			TimeoutMS: 2000,
			Hook: func(ctx context.Context, req sdk.NetworkHookRequest) (*sdk.NetworkHookResult, error) {
				hookCalls.Add(1)
				headers := req.RequestHeaders
				if headers == nil {
					headers = map[string][]string{}
				}
				headers["X-Hook"] = []string{fmt.Sprintf("%s %s", req.Method, req.Path)}
				return &sdk.NetworkHookResult{
					Action:  sdk.NetworkHookActionMutate,
					Request: &sdk.NetworkHookRequestMutation{Headers: headers},
				}, nil
			},
		},
	}}
	sandbox := up.Reach(sdk.New(exampleenv.Image).WithMemory(256).WithNetworkInterception(rules))
	if _, err := client.Launch(sandbox); err != nil {
		exampleenv.Fail("launch", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	echo, err := client.Exec(ctx, fmt.Sprintf(`wget -q -O - --header "X-Remove-Me: 1" %s/echo`, up.URL))
	if err != nil || echo.ExitCode != 0 {
		exampleenv.Fail("echo", fmt.Errorf("%v %+v", err, echo))
	}
	fmt.Println("headers the upstream received:")
	fmt.Println(echo.Stdout)
	if !strings.Contains(echo.Stdout, "X-Sandbox: matchlock") || strings.Contains(echo.Stdout, "X-Remove-Me") || !strings.Contains(echo.Stdout, "X-Hook: GET /echo") {
		exampleenv.Fail("check", fmt.Errorf("header rules were not applied"))
	}

	sse, err := client.Exec(ctx, fmt.Sprintf(`wget -q -O - %s/sse`, up.URL))
	if err != nil || sse.ExitCode != 0 {
		exampleenv.Fail("sse", fmt.Errorf("%v %+v", err, sse))
	}
	fmt.Println("SSE stream as the sandbox saw it:")
	fmt.Println(sse.Stdout)
	if !strings.Contains(sse.Stdout, "hello sandbox") {
		exampleenv.Fail("check", fmt.Errorf("the SSE body transform was not applied"))
	}
	fmt.Printf("ok: callback hook ran %d time(s)\n", hookCalls.Load())
}
