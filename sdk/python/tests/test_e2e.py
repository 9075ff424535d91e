"""End to end against the real ``$MATCHLOCK_BIN rpc`` (runs only with MATCHLOCK_E2E=1).

Needs a host where matchlock can boot VMs and the ``busybox`` image (pulled
or imported beforehand). Every call here is one the unit tests make against
the fake server, so a failure here is a difference between the fake and the
real server.
"""

from __future__ import annotations

import io
import os
import unittest

import _support  # noqa: F401

from matchlock import Client, Config, Sandbox

E2E = os.environ.get("MATCHLOCK_E2E") == "1"
IMAGE = os.environ.get("MATCHLOCK_E2E_IMAGE", "busybox")


@unittest.skipUnless(E2E, "end-to-end test: set MATCHLOCK_E2E=1 (and MATCHLOCK_BIN) to run it against a real matchlock")
class TestEndToEnd(unittest.TestCase):
    def test_sandbox_round_trip(self) -> None:
        client = Client(Config(binary_path=os.environ.get("MATCHLOCK_BIN", "matchlock")))
        client.start()
        removed = False
        try:
            vm_id = client.launch(Sandbox(IMAGE).with_no_network())
            self.assertRegex(vm_id, r"^vm-[0-9a-f]{8}$")

            r = client.exec("echo hello", timeout=120)
            self.assertEqual((r.exit_code, r.stdout, r.stderr), (0, "hello\n", ""))
            self.assertEqual(client.exec(["sh", "-c", "exit 3"], timeout=60).exit_code, 3)

            out, err = io.StringIO(), io.StringIO()
            s = client.exec_stream("echo out; echo err >&2; echo more", stdout=out, stderr=err, timeout=60)
            self.assertEqual(s.exit_code, 0)
            self.assertEqual(out.getvalue(), "out\nmore\n")
            self.assertEqual(err.getvalue(), "err\n")

            payload = bytes(range(256)) * 64  # 16 KiB: several stdin chunks
            piped = io.BytesIO()
            p = client.exec_pipe("cat", stdin=io.BytesIO(payload), stdout=piped, timeout=120)
            self.assertEqual(p.exit_code, 0)
            self.assertEqual(piped.getvalue(), payload)

            blob = bytes(range(256)) * 4 + b"\x00\n\r\xff"
            client.write_file("/tmp/e2e/blob.bin", blob)
            client.write_file("/tmp/e2e/run.sh", "#!/bin/sh\necho ran\n", mode=0o755)
            self.assertEqual(client.read_file("/tmp/e2e/blob.bin"), blob)
            self.assertEqual(client.exec("/tmp/e2e/run.sh", timeout=60).stdout, "ran\n")

            files = {f.name: f for f in client.list_files("/tmp/e2e")}
            self.assertEqual(set(files), {"blob.bin", "run.sh"})
            self.assertEqual(files["blob.bin"].size, len(blob))
            self.assertFalse(files["blob.bin"].is_dir)
            self.assertEqual(files["run.sh"].mode & 0o777, 0o755)
            self.assertTrue(any(f.is_dir and f.name == "e2e" for f in client.list_files("/tmp")))

            client.close()
            client.remove()
            removed = True
        finally:
            if not removed:
                client.close()
                try:
                    client.remove()
                except Exception:  # noqa: BLE001
                    pass


if __name__ == "__main__":
    unittest.main()
