"""Network interception: static header rules, an SSE body rewrite, a callback hook.

    MATCHLOCK_EXAMPLE_UPSTREAM=http://127.0.0.1:8080 python3 examples/python/network_interception/main.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import IMAGE, check, reach, upstream  # noqa: E402

from matchlock import (  # noqa: E402
    Client,
    NetworkBodyTransform,
    NetworkHookRequest,
    NetworkHookRequestMutation,
    NetworkHookResult,
    NetworkHookRule,
    NetworkInterceptionConfig,
    Sandbox,
)

calls: list[str] = []


def tag_request(req: NetworkHookRequest) -> NetworkHookResult:
    """Runs in this process for every matching request, before it leaves."""
    calls.append(f"{req.method} {req.host}{req.path}")
    headers = dict(req.request_headers or {})  # the reply replaces the whole map
    headers["X-Callback"] = [f"seen {req.path}"]
    return NetworkHookResult(action="mutate", request=NetworkHookRequestMutation(headers=headers))


def main() -> None:
    with upstream() as url:
        sandbox, guest_url, _ = reach(Sandbox(IMAGE), url)
        rules = [
            NetworkHookRule(
                name="static-headers",
                phase="before",
                action="mutate",
                set_headers={"X-Static": "from-rule"},
                delete_headers=["X-Drop-Me"],
            ),
            NetworkHookRule(
                name="sse-rewrite",
                phase="after",
                path="/sse",
                action="mutate",
                set_response_headers={"X-Rewritten": "yes"},
                body_replacements=[NetworkBodyTransform(find="world", replace="matchlock")],
            ),
            NetworkHookRule(name="callback", phase="before", path="/echo", hook=tag_request, timeout_ms=2000),
        ]
        sandbox.with_network_interception(NetworkInterceptionConfig(rules=rules))

        with Client() as client:
            client.launch(sandbox)
            try:
                r = client.exec(f'wget -q -O - --header "X-Drop-Me: 1" {guest_url}/echo', timeout=60)
                check(r.exit_code == 0, f"request allowed (stderr: {r.stderr.strip()})")
                headers = json.loads(r.stdout)["headers"]
                print(json.dumps(headers, indent=2, sort_keys=True))
                check(headers.get("x-static") == "from-rule", "static rule set a header")
                check("x-drop-me" not in headers, "static rule deleted a header")
                check(headers.get("x-callback") == "seen /echo", "callback hook added a header")
                check(calls == [f"GET {guest_url.split('://')[1].split(':')[0]}/echo"], f"hook called once: {calls}")

                r = client.exec(f"wget -q -O - {guest_url}/sse", timeout=60)
                print(r.stdout)
                check(r.stdout.count("hello matchlock") == 3, "SSE data lines rewritten while streaming")
                check("world" not in r.stdout, "no original text left")
            finally:
                client.close()
                client.remove()


if __name__ == "__main__":
    main()
