"""Secret injection: the guest holds a placeholder, the host sends the value.

    MATCHLOCK_EXAMPLE_UPSTREAM=http://127.0.0.1:8080 python3 examples/python/basic/main.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import IMAGE, check, reach, upstream  # noqa: E402

from matchlock import Client, Sandbox  # noqa: E402

SECRET = "sk-example-0123456789"


def main() -> None:
    with upstream() as url:
        sandbox, guest_url, secret_host = reach(Sandbox(IMAGE), url)
        sandbox.add_secret("API_TOKEN", SECRET, secret_host)

        with Client() as client:
            vm_id = client.launch(sandbox)
            print(f"sandbox {vm_id} is up")
            try:
                seen = client.exec("printf %s \"$API_TOKEN\"", timeout=60).stdout
                check(seen.startswith("SANDBOX_SECRET_"), f"the guest sees a placeholder ({seen})")
                check(SECRET not in seen, "the guest never sees the value")

                r = client.exec(
                    f'wget -q -O - --header "Authorization: Bearer $API_TOKEN" {guest_url}/echo',
                    timeout=60,
                )
                check(r.exit_code == 0, f"the request went through (stderr: {r.stderr.strip()})")
                echoed = json.loads(r.stdout)
                auth = echoed["headers"].get("authorization", "")
                print(f"upstream received Authorization: {auth}")
                check(auth == f"Bearer {SECRET}", "the host injected the real value on the way out")
            finally:
                client.close()
                client.remove()


if __name__ == "__main__":
    main()
