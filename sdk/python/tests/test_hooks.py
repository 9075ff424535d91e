"""Network callback hooks over the UNIX socket, and SDK-side VFS hooks."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import unittest

import _support  # noqa: F401
from _support import Fake

from matchlock import (
    MatchlockError,
    NetworkBodyTransform,
    NetworkHookRequest,
    NetworkHookRequestMutation,
    NetworkHookResponseMutation,
    NetworkHookResult,
    NetworkHookRule,
    NetworkInterceptionConfig,
    Sandbox,
    VFSHookRule,
    VFSInterceptionConfig,
)


class HookTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = Fake()
        self.fake.__enter__()
        self.addCleanup(self.fake.__exit__, None, None, None)
        self.client = self.fake.client()

    def call(self, callback_id: str, phase: str, raw: bool = False) -> dict:
        """Have the fake host call the SDK's hook; returns the SDK's reply."""
        result = self.client.exec(f"hook {callback_id} {phase}" + (" raw" if raw else ""))
        self.assertTrue(result.stdout.endswith("\n"), "reply is one JSON line")
        return json.loads(result.stdout)


class TestNetworkCallbacks(HookTestCase):
    def launch_with(self, *rules: NetworkHookRule) -> dict:
        self.client.launch(
            Sandbox("busybox")
            .allow_host("api.example.com")
            .with_network_interception(NetworkInterceptionConfig(rules=list(rules)))
        )
        return self.fake.requests("create")[0]["params"]["network"]

    def test_callback_ids_count_over_the_whole_list(self) -> None:
        seen: list[NetworkHookRequest] = []

        def before(req: NetworkHookRequest) -> NetworkHookResult:
            seen.append(req)
            return NetworkHookResult(
                action="mutate",
                request=NetworkHookRequestMutation(
                    headers={"Authorization": ["Bearer x"]}, query={}, path="/v2/items"
                ),
            )

        net = self.launch_with(
            NetworkHookRule(name="static", phase="before", action="block", hosts=["bad.com"]),
            NetworkHookRule(name="cb", phase="before", hosts=["api.example.com"], hook=before, timeout_ms=1500),
        )
        rules = net["interception"]["rules"]
        self.assertNotIn("callback_id", rules[0])
        self.assertEqual(rules[1]["callback_id"], "network_hook_2")
        self.assertEqual(rules[1]["timeout_ms"], 1500)
        self.assertEqual(rules[1]["action"], "allow")
        self.assertTrue(net["intercept"])
        socket_path = net["interception"]["callback_socket"]
        self.assertTrue(os.path.exists(socket_path))

        reply = self.call("network_hook_2", "before")
        self.assertEqual(
            reply,
            {"action": "mutate", "request": {"headers": {"Authorization": ["Bearer x"]}, "query": {}, "path": "/v2/items"}},
        )
        req = seen[0]
        self.assertEqual((req.phase, req.host, req.method, req.path), ("before", "api.example.com", "GET", "/v1/items"))
        self.assertEqual(req.query, {"q": "1"})
        self.assertEqual(req.request_headers, {"Accept": ["*/*"], "X-Trace": ["a", "b"]})
        self.assertEqual((req.status_code, req.response_headers, req.is_sse), (0, None, False))

        self.client.close()
        self.assertFalse(os.path.exists(socket_path), "socket removed on close")

    def test_after_hook_response_mutation(self) -> None:
        def after(req: NetworkHookRequest) -> NetworkHookResult | None:
            if req.status_code != 200:
                return None
            return NetworkHookResult(
                response=NetworkHookResponseMutation(
                    headers={"X-Intercepted": ["callback"]},
                    body_replacements=[NetworkBodyTransform("foo", "bar")],
                    set_body=b"\x00{\"msg\":\"hi\"}\xff",
                )
            )

        self.launch_with(NetworkHookRule(phase="after", hook=after))
        reply = self.call("network_hook_1", "after")
        self.assertEqual(reply["action"], "allow")
        self.assertEqual(reply["response"]["headers"], {"X-Intercepted": ["callback"]})
        self.assertEqual(reply["response"]["body_replacements"], [{"find": "foo", "replace": "bar"}])
        self.assertEqual(base64.b64decode(reply["response"]["set_body_base64"]), b"\x00{\"msg\":\"hi\"}\xff")

    def test_none_means_no_change(self) -> None:
        self.launch_with(NetworkHookRule(hook=lambda req: None))
        self.assertEqual(self.call("network_hook_1", "before"), {})
        self.assertEqual(self.call("network_hook_1", "after"), {}, "a rule without phase takes both")

    def test_failing_hook_answers_error(self) -> None:
        def broken(req: NetworkHookRequest) -> NetworkHookResult:
            raise RuntimeError("upstream secret vault unreachable")

        self.launch_with(NetworkHookRule(name="vault", phase="before", hook=broken))
        reply = self.call("network_hook_1", "before")
        self.assertEqual(list(reply), ["error"])
        self.assertIn("upstream secret vault unreachable", reply["error"])

    def test_wrong_return_type_answers_error(self) -> None:
        self.launch_with(NetworkHookRule(phase="before", hook=lambda req: {"action": "block"}))
        self.assertIn("error", self.call("network_hook_1", "before"))

    def test_unknown_callback_phase_mismatch_and_garbage(self) -> None:
        self.launch_with(NetworkHookRule(phase="before", hook=lambda req: None))
        self.assertIn("not found", self.call("network_hook_9", "before")["error"])
        self.assertIn("phase mismatch", self.call("network_hook_1", "after")["error"])
        self.assertIn("invalid hook request", self.call("network_hook_1", "before", raw=True)["error"])

    def test_concurrent_calls(self) -> None:
        gate = threading.Barrier(4, timeout=5)

        def slow(req: NetworkHookRequest) -> NetworkHookResult:
            gate.wait()  # all four must be inside the hook at once
            return NetworkHookResult(action="block")

        self.launch_with(NetworkHookRule(phase="before", hook=slow))
        replies: list[dict] = []
        threads = [
            threading.Thread(target=lambda: replies.append(self.call("network_hook_1", "before")))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(replies, [{"action": "block"}] * 4)

    def test_callback_rules_cannot_block_or_mutate(self) -> None:
        for action in ("block", "mutate"):
            with self.assertRaisesRegex(MatchlockError, "callback hooks cannot set action"):
                self.client.create(
                    Sandbox("i")
                    .with_network_interception(
                        NetworkInterceptionConfig(rules=[NetworkHookRule(action=action, hook=lambda r: None)])
                    )
                    .options()
                )
        self.assertEqual(self.fake.requests("create"), [])

    def test_failed_create_stops_the_listener(self) -> None:
        self.client.close()
        opts = (
            Sandbox("i")
            .with_network_interception(NetworkInterceptionConfig(rules=[NetworkHookRule(hook=lambda r: None)]))
            .options()
        )
        with self.assertRaises(MatchlockError):
            self.client.create(opts)
        self.assertIsNone(self.client._hook_server)


class TestVFS(HookTestCase):
    def test_vfs_wire_shape(self) -> None:
        events: list = []
        cfg = VFSInterceptionConfig(
            rules=[
                VFSHookRule(name="no-secrets", phase="before", ops=["create"], path="/workspace/*.key", action="block"),
                VFSHookRule(name="audit", phase="after", ops=["write"], hook=events.append, timeout_ms=500),
            ]
        )
        self.client.create(
            Sandbox("i")
            .with_workspace("/workspace")
            .mount_memory("/workspace/tmp")
            .mount_host_dir_readonly("/workspace/cfg", "/etc/app")
            .with_vfs_interception(cfg)
            .options()
        )
        vfs = self.fake.requests("create")[0]["params"]["vfs"]
        self.assertEqual(
            vfs,
            {
                "workspace": "/workspace",
                "mounts": {
                    "/workspace/tmp": {"type": "memory"},
                    "/workspace/cfg": {"type": "host_fs", "host_path": "/etc/app", "readonly": True},
                },
                "interception": {
                    "emit_events": True,
                    "rules": [
                        {"action": "block", "name": "no-secrets", "phase": "before", "ops": ["create"], "path": "/workspace/*.key"}
                    ],
                },
            },
        )

    def test_after_hook_runs_on_file_events(self) -> None:
        got: list = []
        done = threading.Event()

        def hook(event) -> None:
            got.append(event)
            done.set()

        cfg = VFSInterceptionConfig(
            rules=[VFSHookRule(phase="after", ops=["write"], path="/workspace/*.txt", hook=hook)]
        )
        self.client.create(Sandbox("i").with_vfs_interception(cfg).options())
        self.client.exec("event /workspace/skip.bin write")
        self.client.exec("event /workspace/a.txt write")
        self.assertTrue(done.wait(5))
        time.sleep(0.1)
        self.assertEqual(len(got), 1)
        self.assertEqual((got[0].op, got[0].path, got[0].size, got[0].mode), ("write", "/workspace/a.txt", 3, 420))

    def test_action_and_mutate_hooks_on_sdk_calls(self) -> None:
        def decide(req) -> str:
            return "block" if req.path.endswith(".secret") else "allow"

        cfg = VFSInterceptionConfig(
            rules=[
                VFSHookRule(name="guard", ops=["write", "read"], action_hook=decide),
                VFSHookRule(name="stamp", path="/w/*.txt", mutate_hook=lambda req: b"stamped:" + str(req.size).encode()),
            ]
        )
        self.client.create(Sandbox("i").with_vfs_interception(cfg).options())
        self.assertNotIn("vfs", self.fake.requests("create")[0]["params"], "local-only hooks send no vfs")
        with self.assertRaisesRegex(MatchlockError, "blocked"):
            self.client.write_file("/w/x.secret", "nope")
        self.assertEqual(self.fake.requests("write_file"), [])
        self.client.write_file("/w/a.txt", "hello")
        self.assertEqual(self.client.read_file("/w/a.txt"), b"stamped:5")

    def test_invalid_vfs_rules(self) -> None:
        bad = [
            VFSHookRule(phase="before", hook=lambda e: None),
            VFSHookRule(phase="after", action_hook=lambda r: "allow"),
            VFSHookRule(action="block", mutate_hook=lambda r: None),
            VFSHookRule(hook=lambda e: None, dangerous_hook=lambda c, e: None, phase="after"),
            VFSHookRule(action="mutate_write"),
        ]
        for rule in bad:
            with self.assertRaises(MatchlockError, msg=repr(rule)):
                self.client.create(Sandbox("i").with_vfs_interception(VFSInterceptionConfig(rules=[rule])).options())


if __name__ == "__main__":
    unittest.main()
