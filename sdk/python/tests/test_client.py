"""Client against the fake ``matchlock rpc``: every method, routing, errors, timing."""

from __future__ import annotations

import base64
import io
import os
import threading
import time
import unittest
from unittest import mock

import _support
from _support import Fake

from matchlock import (
    Client,
    Config,
    CreateOptions,
    ExecInteractiveResult,
    ExecPipeResult,
    ExecResult,
    HostIPMapping,
    MatchlockError,
    NetworkHookRule,
    NetworkInterceptionConfig,
    PortForward,
    PortForwardBinding,
    RPCError,
    Sandbox,
    Secret,
)

ALL_BYTES = bytes(range(256))


class FakeTestCase(unittest.TestCase):
    env: dict[str, str] = {}

    def setUp(self) -> None:
        self.fake = Fake(**self.env)
        self.fake.__enter__()
        self.addCleanup(self.fake.__exit__, None, None, None)
        self.client = self.fake.client()

    def launched(self, sandbox: Sandbox | None = None) -> Client:
        self.client.launch(sandbox or Sandbox("busybox"))
        return self.client


class TestLifecycle(FakeTestCase):
    def test_binary_comes_from_matchlock_bin(self) -> None:
        with mock.patch.dict(os.environ, {"MATCHLOCK_BIN": "/opt/x/matchlock"}):
            self.assertEqual(Client()._config.binary_path, "/opt/x/matchlock")
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(Client()._config.binary_path, "matchlock")

    def test_context_manager_closes_with_close_request_then_eof(self) -> None:
        with Client(Config(binary_path=self.fake.binary)) as client:
            client.launch(Sandbox("busybox"))
            proc = client._process
        self.assertIsNotNone(proc.poll(), "rpc process must have exited")
        close = self.fake.requests("close")
        self.assertEqual(len(close), 1)
        self.assertEqual(close[0]["params"], {"timeout_seconds": 2.0})
        self.assertTrue(self.fake.records("stdin_eof"))
        kinds = [r["kind"] for r in self.fake.records() if r["kind"] in ("in", "stdin_eof")]
        self.assertEqual(kinds[-1], "stdin_eof", "stdin is closed after the close request")

    def test_close_passes_timeout_and_is_idempotent(self) -> None:
        self.launched()
        self.client.close(timeout=4)
        self.client.close(timeout=4)
        self.assertEqual([r["params"] for r in self.fake.requests("close")], [{"timeout_seconds": 4}])

    def test_requests_after_close_fail(self) -> None:
        self.launched()
        self.client.close()
        with self.assertRaisesRegex(MatchlockError, "not running"):
            self.client.exec("echo hi")

    def test_request_before_start_fails(self) -> None:
        client = self.fake.client(start=False)
        with self.assertRaisesRegex(MatchlockError, "not running"):
            client.exec("echo hi")

    def test_missing_binary_is_a_matchlock_error(self) -> None:
        client = Client(Config(binary_path="/nonexistent/matchlock"))
        with self.assertRaisesRegex(MatchlockError, "cannot start"):
            client.start()

    def test_sudo_prefix(self) -> None:
        client = Client(Config(binary_path="/bin/matchlock", use_sudo=True))
        with mock.patch("subprocess.Popen") as popen:
            popen.side_effect = OSError("no sudo here")
            with self.assertRaises(MatchlockError):
                client.start()
        self.assertEqual(popen.call_args[0][0], ["sudo", "/bin/matchlock", "rpc"])

    def test_process_exit_fails_pending_requests(self) -> None:
        self.launched()
        results: list[BaseException] = []

        def slow() -> None:
            try:
                self.client.exec("sleep 30")
            except BaseException as e:  # noqa: BLE001
                results.append(e)

        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(self.fake.wait_for(lambda: len(self.fake.requests("exec")) == 1))
        started = time.monotonic()
        with self.assertRaisesRegex(MatchlockError, "closed unexpectedly"):
            self.client.exec("die")
        t.join(5)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(len(results), 1)
        self.assertIsInstance(results[0], MatchlockError)
        self.assertIn("closed unexpectedly", str(results[0]))
        self.assertIn("fake matchlock rpc starting", self.client.stderr_tail())
        with self.assertRaisesRegex(MatchlockError, "not running"):
            self.client.exec("echo again")
        self.client.close()  # still fine

    def test_remove_runs_rm_with_vm_id_after_close(self) -> None:
        self.launched()
        self.client.close()
        self.client.remove()
        self.assertEqual(self.fake.records("cli")[-1]["argv"], ["rm", "vm-0123abcd"])

    def test_remove_without_vm_is_noop(self) -> None:
        self.client.remove()
        self.assertEqual(self.fake.records("cli"), [])


class TestCloseTiming(FakeTestCase):
    env = {"close": "hang"}

    def test_hanging_server_is_killed(self) -> None:
        self.launched()
        proc = self.client._process
        started = time.monotonic()
        self.client.close(timeout=0.5)
        elapsed = time.monotonic() - started
        self.assertIsNotNone(proc.poll())
        self.assertEqual(proc.returncode, -9, "killed with SIGKILL")
        # 0.5 s for the close answer + 1 s grace, then 0.5 s for the exit.
        self.assertGreaterEqual(elapsed, 1.9)
        self.assertLess(elapsed, 4.0)
        self.assertTrue(self.fake.records("stdin_eof"), "stdin closed before the kill")
        self.assertEqual(self.fake.requests("cancel"), [], "a close is not cancelled")


class TestCreate(FakeTestCase):
    def create_params(self, opts: CreateOptions) -> dict:
        self.client.create(opts)
        return self.fake.requests("create")[-1]["params"]

    def test_minimal_create(self) -> None:
        vm = self.client.create(CreateOptions(image="busybox"))
        self.assertEqual(vm, "vm-0123abcd")
        self.assertEqual(self.client.vm_id, "vm-0123abcd")
        self.assertEqual(self.fake.requests("create")[0]["params"], {"image": "busybox"})

    def test_image_required(self) -> None:
        with self.assertRaisesRegex(MatchlockError, "image is required"):
            self.client.create(CreateOptions())
        self.assertEqual(self.fake.requests("create"), [])

    def test_resources_only_fields_set(self) -> None:
        params = self.create_params(CreateOptions(image="i", cpus=0.5, memory_mb=256))
        self.assertEqual(params["resources"], {"cpus": 0.5, "memory_mb": 256})
        params = self.create_params(
            CreateOptions(image="i", cpus=2, memory_mb=512, disk_size_mb=2048, timeout_seconds=300)
        )
        self.assertEqual(
            params["resources"],
            {"cpus": 2, "memory_mb": 512, "disk_size_mb": 2048, "timeout_seconds": 300},
        )

    def test_network_shapes(self) -> None:
        params = self.create_params(
            CreateOptions(
                image="i",
                allowed_hosts=["a.com"],
                secrets=[Secret("K", "V", ["a.com"], placeholder="ph")],
                add_hosts=[HostIPMapping("api.local", "127.0.0.1")],
                dns_servers=["1.1.1.1"],
                hostname="box",
                network_mtu=1200,
            )
        )
        self.assertEqual(
            params["network"],
            {
                "allowed_hosts": ["a.com"],
                "block_private_ips": True,
                "add_hosts": [{"host": "api.local", "ip": "127.0.0.1"}],
                "secrets": {"K": {"value": "V", "hosts": ["a.com"], "placeholder": "ph"}},
                "dns_servers": ["1.1.1.1"],
                "hostname": "box",
                "mtu": 1200,
            },
        )

    def test_no_network_sends_nothing_else(self) -> None:
        params = self.create_params(CreateOptions(image="i", no_network=True, hostname="h"))
        self.assertEqual(params["network"], {"no_network": True, "hostname": "h"})
        with self.assertRaisesRegex(MatchlockError, "no network cannot be combined"):
            self.client.create(CreateOptions(image="i", no_network=True, allowed_hosts=["x"]))

    def test_private_ips_explicit_and_default(self) -> None:
        self.assertNotIn("network", self.create_params(CreateOptions(image="i")))
        params = self.create_params(Sandbox("i").allow_private_ips().options())
        self.assertEqual(params["network"], {"allowed_hosts": [], "block_private_ips": False})
        params = self.create_params(Sandbox("i").with_network_interception().options())
        self.assertEqual(
            params["network"], {"allowed_hosts": [], "block_private_ips": True, "intercept": True}
        )

    def test_static_rules_and_allow_tcp(self) -> None:
        rule = NetworkHookRule(phase="before", hosts=["a.com"], set_headers={"X": "1"})
        params = self.create_params(
            Sandbox("i")
            .allow_tcp("git.example.com:22")
            .with_network_interception(NetworkInterceptionConfig(rules=[rule]))
            .options()
        )
        net = params["network"]
        self.assertTrue(net["intercept"])
        self.assertEqual(net["allow_tcp"], ["git.example.com:22"])
        self.assertEqual(
            net["interception"],
            {"rules": [{"action": "allow", "phase": "before", "hosts": ["a.com"], "set_headers": {"X": "1"}}]},
        )
        self.assertNotIn("callback_socket", net["interception"])

    def test_everything_else(self) -> None:
        params = self.create_params(
            Sandbox("i")
            .with_privileged()
            .with_env("A", "1")
            .with_user("1000:1000")
            .with_entrypoint("/bin/sh", "-c")
            .with_cmd("echo hi")
            .with_working_dir("/srv")
            .add_disk("/tmp/d.ext4", "/data", readonly=True)
            .options()
        )
        self.assertIs(params["privileged"], True)
        self.assertEqual(params["env"], {"A": "1"})
        self.assertEqual(
            params["image_config"],
            {"user": "1000:1000", "working_dir": "/srv", "entrypoint": ["/bin/sh", "-c"], "cmd": ["echo hi"]},
        )
        self.assertEqual(
            params["extra_disks"], [{"host_path": "/tmp/d.ext4", "guest_mount": "/data", "readonly": True}]
        )
        self.assertNotIn("launch_entrypoint", params)

    def test_launch_sets_launch_entrypoint_without_touching_builder(self) -> None:
        sandbox = Sandbox("busybox").with_cpus(2)
        self.client.launch(sandbox)
        self.assertIs(self.fake.requests("create")[0]["params"]["launch_entrypoint"], True)
        self.assertFalse(sandbox.options().launch_entrypoint)

    def test_kernel_ref_is_refused(self) -> None:
        with self.assertRaisesRegex(MatchlockError, "kernel"):
            self.client.create(Sandbox("i").with_kernel("file:///vmlinux").options())

    def test_port_forwards_applied_after_create(self) -> None:
        vm = self.client.create(
            Sandbox("i").with_port_forward(18080, 8080).with_port_forward_addresses("0.0.0.0").options()
        )
        self.assertEqual(vm, "vm-0123abcd")
        methods = [m["method"] for m in self.fake.requests()]
        self.assertEqual(methods, ["create", "port_forward"])
        self.assertEqual(
            self.fake.requests("port_forward")[0]["params"],
            {"forwards": [{"local_port": 18080, "remote_port": 8080}], "addresses": ["0.0.0.0"]},
        )

    def test_port_forward_failure_keeps_vm_id(self) -> None:
        with self.assertRaises(RPCError) as ctx:
            self.client.create(CreateOptions(image="i", port_forwards=[PortForward(1, 80)]))
        self.assertEqual(ctx.exception.code, -32000)
        self.assertEqual(self.client.vm_id, "vm-0123abcd")

    def test_create_error_is_rpc_error(self) -> None:
        client = self.client
        with mock.patch.object(client, "_send_request", side_effect=RPCError(-32000, "VM failed to start")):
            with self.assertRaises(RPCError) as ctx:
                client.create(CreateOptions(image="bad"))
        self.assertTrue(ctx.exception.is_vm_error())
        self.assertEqual(str(ctx.exception), "[-32000] VM failed to start")


class TestExec(FakeTestCase):
    def test_exec_decodes_output(self) -> None:
        self.launched()
        r = self.client.exec("echo hello")
        self.assertIsInstance(r, ExecResult)
        self.assertEqual((r.exit_code, r.stdout, r.stderr, r.duration_ms), (0, "hello\n", "", 7))
        r = self.client.exec("stderr oops")
        self.assertEqual(r.stderr, "oops\n")
        self.assertEqual(self.client.exec("exit 3").exit_code, 3)

    def test_exec_is_binary_safe(self) -> None:
        self.launched()
        r = self.client.exec("binary")
        self.assertEqual(r.stdout_bytes, ALL_BYTES)
        self.assertEqual(r.stdout, ALL_BYTES.decode("utf-8", errors="replace"))

    def test_exec_params(self) -> None:
        self.launched()
        self.client.exec("echo a")
        self.client.exec("echo b", working_dir="/tmp", user="nobody", env={"X": "1"})
        self.client.exec(["echo", "c"])
        params = [m["params"] for m in self.fake.requests("exec")]
        self.assertEqual(params[0], {"command": "echo a"})
        self.assertEqual(params[1], {"command": "echo b", "working_dir": "/tmp", "user": "nobody", "env": {"X": "1"}})
        self.assertEqual(params[2], {"command": ["echo", "c"]})

    def test_exec_error(self) -> None:
        self.launched()
        with self.assertRaises(RPCError) as ctx:
            self.client.exec("fail")
        self.assertTrue(ctx.exception.is_exec_error())
        self.assertEqual(ctx.exception.message, "exec failed: boom")

    def test_timeout_sends_cancel_for_that_request(self) -> None:
        self.launched()
        started = time.monotonic()
        with self.assertRaises(TimeoutError):
            self.client.exec("sleep 30", timeout=0.3)
        self.assertLess(time.monotonic() - started, 2)
        exec_id = self.fake.requests("exec")[0]["id"]
        self.assertTrue(self.fake.wait_for(lambda: self.fake.requests("cancel")))
        cancel = self.fake.requests("cancel")[0]
        self.assertEqual(cancel["params"], {"id": exec_id})
        self.assertIsInstance(cancel["id"], int)
        self.assertNotEqual(cancel["id"], exec_id)
        self.assertEqual(self.client.exec("echo still").stdout, "still\n")

    def test_cancel_event(self) -> None:
        self.launched()
        stop = threading.Event()
        threading.Timer(0.2, stop.set).start()
        with self.assertRaises(RPCError) as ctx:
            self.client.exec("sleep 30", cancel=stop)
        self.assertTrue(ctx.exception.is_cancelled())
        self.assertEqual(len(self.fake.requests("cancel")), 1)

    def test_concurrent_requests_get_their_own_answers(self) -> None:
        self.launched()
        out: dict[int, str] = {}

        def run(i: int) -> None:
            out[i] = self.client.exec(f"echo n{i}").stdout

        threads = [threading.Thread(target=run, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        self.assertEqual(out, {i: f"n{i}\n" for i in range(12)})
        ids = [m["id"] for m in self.fake.requests()]
        self.assertEqual(len(ids), len(set(ids)), "request ids are unique")


class TestExecStream(FakeTestCase):
    def test_text_writers(self) -> None:
        self.launched()
        out, err = io.StringIO(), io.StringIO()
        r = self.client.exec_stream("echo streamed", stdout=out, stderr=err)
        self.assertEqual((r.exit_code, r.duration_ms), (0, 9))
        self.assertEqual(out.getvalue(), "streamed\n")
        self.client.exec_stream("stderr warn", stdout=out, stderr=err)
        self.assertEqual(err.getvalue(), "warn\n")

    def test_binary_writer_gets_exact_bytes(self) -> None:
        self.launched()
        out = io.BytesIO()
        self.client.exec_stream("binary", stdout=out)
        self.assertEqual(out.getvalue(), ALL_BYTES)

    def test_callable_target(self) -> None:
        self.launched()
        chunks: list[bytes] = []
        self.client.exec_stream("binary", stdout=chunks.append)
        self.assertGreater(len(chunks), 1, "delivered as it streams")
        self.assertEqual(b"".join(chunks), ALL_BYTES)

    def test_split_utf8_sequence_is_decoded_whole(self) -> None:
        self.launched()
        out = io.StringIO()
        self.client.exec_stream("utf8split", stdout=out)
        self.assertEqual(out.getvalue(), "é€ok\n")

    def test_unrelated_messages_are_ignored(self) -> None:
        self.launched()
        out = io.StringIO()
        r = self.client.exec_stream("noise", stdout=out)
        self.assertEqual(out.getvalue(), "fine\n")
        self.assertEqual(r.exit_code, 0)
        self.assertEqual(self.client.exec("noise").exit_code, 0)

    def test_writer_error_surfaces(self) -> None:
        self.launched()

        def broken(_: bytes) -> None:
            raise ValueError("writer broke")

        with self.assertRaisesRegex(ValueError, "writer broke"):
            self.client.exec_stream("echo x", stdout=broken)
        self.assertEqual(self.client.exec("echo ok").stdout, "ok\n")


class TestExecPipe(FakeTestCase):
    def assert_stdin_after_ready(self) -> None:
        self.assertEqual(self.fake.records("violation"), [])
        ready_at = {r["id"]: r["t"] for r in self.fake.records("ready_sent")}
        for entry in self.fake.records("in"):
            msg = entry["msg"]
            if msg["method"].endswith((".stdin", ".stdin_eof", ".resize")):
                target = msg["params"]["id"]
                self.assertIn(target, ready_at)
                self.assertGreater(entry["t"], ready_at[target])

    def test_binary_stdin_round_trip_in_chunks(self) -> None:
        self.launched()
        payload = ALL_BYTES * 40  # 10240 bytes
        out, err = io.BytesIO(), io.StringIO()
        r = self.client.exec_pipe("cat", stdin=io.BytesIO(payload), stdout=out, stderr=err)
        self.assertIsInstance(r, ExecPipeResult)
        self.assertEqual((r.exit_code, r.duration_ms), (0, 11))
        self.assertEqual(out.getvalue(), payload)
        self.assertEqual(err.getvalue(), "done\n")
        chunks = [base64.b64decode(m["params"]["data"]) for m in self.fake.requests("exec_pipe.stdin")]
        self.assertEqual(b"".join(chunks), payload)
        self.assertTrue(all(len(c) <= 4096 for c in chunks))
        self.assertEqual(len(self.fake.requests("exec_pipe.stdin_eof")), 1)
        pipe_id = self.fake.requests("exec_pipe")[0]["id"]
        for m in self.fake.requests("exec_pipe.stdin") + self.fake.requests("exec_pipe.stdin_eof"):
            self.assertEqual(m["params"]["id"], pipe_id)
            self.assertIsInstance(m["id"], int)
        self.assert_stdin_after_ready()

    def test_text_stdin_and_params(self) -> None:
        self.launched()
        out = io.StringIO()
        self.client.exec_pipe("cat", stdin=io.StringIO("héllo\n"), stdout=out, working_dir="/w", user="1000:1000")
        self.assertEqual(out.getvalue(), "héllo\n")
        self.assertEqual(
            self.fake.requests("exec_pipe")[0]["params"],
            {"command": "cat", "working_dir": "/w", "user": "1000:1000"},
        )
        self.assert_stdin_after_ready()

    def test_no_stdin_means_eof_right_after_ready(self) -> None:
        self.launched()
        r = self.client.exec_pipe("cat")
        self.assertEqual(r.exit_code, 0)
        self.assertEqual(self.fake.requests("exec_pipe.stdin"), [])
        self.assertEqual(len(self.fake.requests("exec_pipe.stdin_eof")), 1)
        self.assert_stdin_after_ready()

    def test_bytes_stdin(self) -> None:
        self.launched()
        out = io.BytesIO()
        self.client.exec_pipe("cat", stdin=b"\x00raw\xff", stdout=out)
        self.assertEqual(out.getvalue(), b"\x00raw\xff")

    def test_pipe_timeout_cancels(self) -> None:
        self.launched()
        blocker = threading.Event()

        class Forever:
            def read(self, n: int) -> bytes:
                blocker.wait(5)
                return b""

        with self.assertRaises(TimeoutError):
            self.client.exec_pipe("cat", stdin=Forever(), timeout=0.6)
        blocker.set()
        self.assertTrue(self.fake.wait_for(lambda: self.fake.requests("cancel")))


class TestExecInteractive(FakeTestCase):
    def test_tty_with_resize(self) -> None:
        self.launched()
        out = io.StringIO()
        r = self.client.exec_interactive(
            "sh", stdin=io.StringIO("exit\n"), stdout=out, rows=30, cols=100, resize=[(40, 120)], user="u"
        )
        self.assertIsInstance(r, ExecInteractiveResult)
        self.assertEqual(out.getvalue(), "exit\n")
        tty = self.fake.requests("exec_tty")[0]
        self.assertEqual(tty["params"], {"command": "sh", "user": "u", "rows": 30, "cols": 100})
        resize = self.fake.requests("exec_tty.resize")
        self.assertEqual(resize[0]["params"], {"id": tty["id"], "rows": 40, "cols": 120})
        self.assertEqual(len(self.fake.requests("exec_tty.stdin_eof")), 1)
        TestExecPipe.assert_stdin_after_ready(self)  # type: ignore[arg-type]

    def test_defaults_and_alias(self) -> None:
        self.launched()
        self.client.exec_tty("sh", rows=0, cols=-1)
        self.assertEqual(self.fake.requests("exec_tty")[0]["params"], {"command": "sh", "rows": 24, "cols": 80})


class TestFiles(FakeTestCase):
    def test_write_read_round_trip(self) -> None:
        self.launched()
        self.client.write_file("/tmp/all.bin", ALL_BYTES)
        self.client.write_file("/tmp/t.txt", "héllo")
        self.client.write_file("/tmp/x.sh", "#!/bin/sh\n", mode=0o755)
        self.assertEqual(self.client.read_file("/tmp/all.bin"), ALL_BYTES)
        self.assertEqual(self.client.read_file("/tmp/t.txt"), "héllo".encode())
        params = [m["params"] for m in self.fake.requests("write_file")]
        self.assertEqual([p["mode"] for p in params], [420, 420, 493])
        self.assertEqual(base64.b64decode(params[0]["content"]), ALL_BYTES)

    def test_read_missing_is_file_error(self) -> None:
        self.launched()
        with self.assertRaises(RPCError) as ctx:
            self.client.read_file("/nope")
        self.assertTrue(ctx.exception.is_file_error())

    def test_list_files(self) -> None:
        self.launched()
        self.client.write_file("/d/a.txt", "12345")
        self.client.write_file("/d/sub/b.txt", "x")
        files = self.client.list_files("/d")
        self.assertEqual([(f.name, f.size, f.is_dir) for f in files], [("a.txt", 5, False), ("sub", 0, True)])
        self.assertEqual(files[0].mode, 0o644)
        self.assertEqual(files[0].mod_time, "2024-01-02T03:04:05Z")
        self.assertEqual(files[1].mod_time, "")


class TestLogs(FakeTestCase):
    def test_log(self) -> None:
        self.launched()
        self.assertEqual(self.client.log(), "boot ok\nentrypoint: ✓\n")
        self.assertNotIn("params", self.fake.requests("log")[0])

    def test_log_stream_until_timeout(self) -> None:
        self.launched()
        out = io.StringIO()
        with self.assertRaises(TimeoutError):
            self.client.log_stream(stdout=out, timeout=0.5)
        self.assertEqual(out.getvalue(), "line one\nline two\n")
        self.assertTrue(self.fake.wait_for(lambda: self.fake.requests("cancel")))

    def test_log_stream_stops_on_cancel_event(self) -> None:
        self.launched()
        out = io.BytesIO()
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        self.client.log_stream(stdout=out, cancel=stop)
        self.assertEqual(out.getvalue(), b"line one\nline two\n")
        self.assertEqual(self.fake.requests("cancel")[0]["params"], {"id": self.fake.requests("log_stream")[0]["id"]})


class TestLogStreamEnds(FakeTestCase):
    env = {"log_end": "1"}

    def test_log_stream_returns_when_server_ends_it(self) -> None:
        self.launched()
        lines: list[bytes] = []
        self.assertIsNone(self.client.log_stream(stdout=lines.append, timeout=5))
        self.assertEqual(b"".join(lines), b"line one\nline two\n")


class TestNetworkRuntime(FakeTestCase):
    def test_allow_list(self) -> None:
        self.launched()
        r = self.client.allow_list_add("a.com", "b.com,c.com")
        self.assertEqual((r.changed, r.allowed_hosts), (["a.com", "b.com", "c.com"], ["a.com", "b.com", "c.com"]))
        r = self.client.allow_list_delete("b.com")
        self.assertEqual((r.changed, r.allowed_hosts), (["b.com"], ["a.com", "c.com"]))
        self.assertEqual(self.fake.requests("allow_list_add")[0]["params"], {"hosts": ["a.com", "b.com", "c.com"]})
        with self.assertRaises(MatchlockError):
            self.client.allow_list_add()

    def test_port_forward(self) -> None:
        self.launched()
        bindings = self.client.port_forward("8080", "19090:9090")
        self.assertEqual(
            bindings,
            [PortForwardBinding("127.0.0.1", 8080, 8080), PortForwardBinding("127.0.0.1", 19090, 9090)],
        )
        self.assertEqual(
            self.fake.requests("port_forward")[0]["params"],
            {"forwards": [{"local_port": 8080, "remote_port": 8080}, {"local_port": 19090, "remote_port": 9090}],
             "addresses": ["127.0.0.1"]},
        )
        bindings = self.client.port_forward_with_addresses(["0.0.0.0"], "18080:8080")
        self.assertEqual(bindings, [PortForwardBinding("0.0.0.0", 18080, 8080)])

    def test_port_forward_rejects_bad_specs(self) -> None:
        self.launched()
        for spec in ("1:2:3", "", "0", "70000", "x:80"):
            with self.assertRaises(MatchlockError, msg=spec):
                self.client.port_forward(spec)
        self.assertEqual(self.fake.requests("port_forward"), [])


class TestVolumesAndCli(FakeTestCase):
    def test_volume_commands(self) -> None:
        v = self.client.volume_create("cache", 16)
        self.assertEqual((v.name, v.size, v.path), ("cache", "16.0 MB", "/var/vol/cache.ext4"))
        self.assertEqual([x.name for x in self.client.volume_list()], ["cache"])
        self.client.volume_remove("cache")
        argv = [r["argv"] for r in self.fake.records("cli")]
        self.assertEqual(
            argv,
            [["volume", "create", "cache", "--size", "16", "--json"], ["volume", "ls", "--json"], ["volume", "rm", "cache"]],
        )

    def test_volume_input_checks(self) -> None:
        with self.assertRaisesRegex(MatchlockError, "volume name is required"):
            self.client.volume_create("  ", 16)
        with self.assertRaisesRegex(MatchlockError, "volume size must be > 0"):
            self.client.volume_create("x", 0)

    def test_cli_failure_is_both_error_types(self) -> None:
        import subprocess

        with self.assertRaises(subprocess.CalledProcessError) as ctx:
            self.client.volume_remove("missing")
        self.assertIsInstance(ctx.exception, MatchlockError)
        self.assertIn("not found", str(ctx.exception))
        self.client._vm_id = "vm-fail"
        with self.assertRaises(MatchlockError):
            self.client.remove()


if __name__ == "__main__":
    unittest.main()
