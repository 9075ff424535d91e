"""Conformance with contract/rpc.json.

1. Every request the SDK sent to a fake server in this test process (this
   module's own full exercise, plus the other test modules that ran before it)
   is checked against the contract: method known, every required param
   present, no param the contract does not list, types right (base64 decodes,
   integers are integers).
2. Every reply the SDK gave to a hook callback matches ``HookCallbackReply``.
3. Results shaped exactly as the contract says (only the required fields, and
   all fields) are accepted by the SDK.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import unittest
from typing import Any

import _support
from _support import CONTRACT_PATH, Fake

from matchlock import (
    ImageConfig,
    NetworkHookResult,
    NetworkHookRule,
    NetworkInterceptionConfig,
    NetworkHookResponseMutation,
    NetworkBodyTransform,
    RPCError,
    Sandbox,
    VFSHookRule,
    VFSInterceptionConfig,
)


def load_contract() -> dict[str, Any]:
    with open(CONTRACT_PATH, encoding="utf-8") as f:
        return json.load(f)


def _split_union(typ: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in typ:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


class Checker:
    """Checks JSON values against the contract's notation (see contract/README.md)."""

    def __init__(self, contract: dict[str, Any]) -> None:
        self.types = contract["types"]

    def value(self, v: Any, typ: str, where: str) -> list[str]:
        alternatives = _split_union(typ)
        if len(alternatives) > 1:
            results = [self.value(v, t, where) for t in alternatives]
            return [] if any(not r for r in results) else results[0]
        if typ == "string":
            return [] if isinstance(v, str) else [f"{where}: expected string, got {v!r}"]
        if typ == "base64":
            if not isinstance(v, str):
                return [f"{where}: expected base64 string, got {v!r}"]
            try:
                base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                return [f"{where}: not standard base64: {v!r}"]
            return []
        if typ == "integer":
            ok = isinstance(v, int) and not isinstance(v, bool)
            return [] if ok else [f"{where}: expected integer, got {v!r}"]
        if typ == "number":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
            return [] if ok else [f"{where}: expected number, got {v!r}"]
        if typ == "boolean":
            return [] if isinstance(v, bool) else [f"{where}: expected boolean, got {v!r}"]
        if typ == "object":
            return [] if isinstance(v, dict) else [f"{where}: expected object, got {v!r}"]
        if typ.startswith("array<"):
            if not isinstance(v, list):
                return [f"{where}: expected array, got {v!r}"]
            inner = typ[len("array<"):-1]
            return [e for i, x in enumerate(v) for e in self.value(x, inner, f"{where}[{i}]")]
        if typ.startswith("map<"):
            if not isinstance(v, dict):
                return [f"{where}: expected map, got {v!r}"]
            inner = typ[len("map<"):-1]
            return [e for k, x in v.items() for e in self.value(x, inner, f"{where}.{k}")]
        if typ.startswith("#"):
            return self.obj(v, self.types[typ[1:]], where)
        return [f"{where}: unknown contract type {typ!r}"]

    def obj(self, v: Any, shape: dict[str, Any], where: str) -> list[str]:
        if not isinstance(v, dict):
            return [f"{where}: expected object, got {v!r}"]
        fields = shape.get("fields", {})
        errors = []
        for name in shape.get("forbidden", []):
            if name in v:
                errors.append(f"{where}.{name}: forbidden field")
        for name, spec in fields.items():
            if spec.get("required") and name not in v:
                errors.append(f"{where}.{name}: required field missing")
        for name, x in v.items():
            if name not in fields:
                if name not in shape.get("forbidden", []):
                    errors.append(f"{where}.{name}: field not in the contract")
                continue
            spec = fields[name]
            errors += self.value(x, spec["type"], f"{where}.{name}")
            if "enum" in spec and x not in spec["enum"]:
                errors.append(f"{where}.{name}: {x!r} not one of {spec['enum']}")
        return errors

    def shape(self, ref: Any) -> dict[str, Any]:
        return self.types[ref[1:]] if isinstance(ref, str) else ref

    def request(self, msg: dict[str, Any], methods: dict[str, Any]) -> list[str]:
        method = msg.get("method")
        where = f"{method}#{msg.get('id')}"
        errors = []
        if msg.get("jsonrpc") != "2.0":
            errors.append(f"{where}: jsonrpc must be '2.0'")
        if not (isinstance(msg.get("id"), int) and not isinstance(msg.get("id"), bool)):
            errors.append(f"{where}: every request needs a numeric id")
        extra = set(msg) - {"jsonrpc", "method", "id", "params"}
        if extra:
            errors.append(f"{where}: unexpected top-level fields {sorted(extra)}")
        if method not in methods:
            return errors + [f"{where}: method not in the contract"]
        params = msg.get("params", {})
        return errors + self.obj(params, self.shape(methods[method]["params"]), f"{where}.params")

    # Samples for result acceptance.
    def sample(self, typ: str, spec: dict[str, Any], full: bool) -> Any:
        if "enum" in spec:
            return spec["enum"][0]
        typ = _split_union(typ)[0]
        if typ == "string":
            return "sample"
        if typ == "base64":
            return base64.b64encode(b"\x00\xffsample").decode()
        if typ == "integer":
            return 7
        if typ == "number":
            return 1.5
        if typ == "boolean":
            return True
        if typ == "object":
            return {}
        if typ.startswith("array<"):
            return [self.sample(typ[6:-1], {}, full)]
        if typ.startswith("map<"):
            return {"k": self.sample(typ[4:-1], {}, full)}
        if typ.startswith("#"):
            return self.sample_object(self.types[typ[1:]], full)
        raise AssertionError(typ)

    def sample_object(self, shape: dict[str, Any], full: bool) -> dict[str, Any]:
        return {
            name: self.sample(spec["type"], spec, full)
            for name, spec in shape.get("fields", {}).items()
            if full or spec.get("required")
        }


def exercise_everything(fake: Fake) -> None:
    """Call every SDK method with as many options as possible."""
    client = fake.client()
    hook_rules = [
        NetworkHookRule(name="static", phase="before", hosts=["a.com"], methods=["GET"], path="/x/*",
                        set_headers={"X": "1"}, delete_headers=["Y"], set_query={"q": "1"},
                        delete_query=["r"], rewrite_path="/z", action="mutate"),
        NetworkHookRule(name="after", phase="after", set_response_headers={"A": "b"},
                        delete_response_headers=["C"], body_replacements=[NetworkBodyTransform("f", "g")]),
        NetworkHookRule(name="cb", phase="after", timeout_ms=500,
                        hook=lambda req: NetworkHookResult(action="mutate", response=NetworkHookResponseMutation(
                            headers={"H": ["v"]}, body_replacements=[NetworkBodyTransform("x")], set_body="y"))),
    ]
    sandbox = (
        Sandbox("busybox")
        .with_privileged()
        .with_cpus(0.5).with_memory(256).with_disk_size(1024).with_timeout(300)
        .with_env("A", "1")
        .with_user("1000").with_working_dir("/w").with_entrypoint("sh").with_cmd("-c", "true")
        .with_image_config(ImageConfig(env={"E": "1"}))
        .allow_host("a.com").allow_tcp("a.com:22").add_host("api.local", "127.0.0.1")
        .block_private_ips().with_network_mtu(1400).with_dns_servers("1.1.1.1").with_hostname("box")
        .add_secret("TOKEN", "s3cr3t", "a.com", placeholder="SANDBOX_SECRET_x")
        .add_secret("PLAIN", "v", "http://api.local")
        .with_network_interception(NetworkInterceptionConfig(rules=hook_rules))
        .with_port_forward(18080, 8080).with_port_forward_addresses("127.0.0.1")
        .with_workspace("/workspace").mount_memory("/workspace/m").mount_overlay("/workspace/o", "/tmp")
        .with_vfs_interception(VFSInterceptionConfig(emit_events=True, rules=[
            VFSHookRule(name="b", phase="before", ops=["create"], path="/workspace/*", action="block", timeout_ms=5)]))
        .add_disk("/tmp/d.ext4", "/data", readonly=True)
    )
    client.launch(sandbox)
    client.exec("echo hi", working_dir="/w", user="u", env={"K": "V"})
    client.exec(["echo", "argv"])
    client.exec("hook network_hook_3 after")
    client.exec_stream("binary", stdout=io.BytesIO(), stderr=io.StringIO(), working_dir="/w", user="u")
    client.exec_pipe("cat", stdin=bytes(range(256)) * 20, stdout=io.BytesIO(), working_dir="/w", user="u", env={"K": "V"})
    client.exec_interactive("sh", stdin=b"exit\n", stdout=io.BytesIO(), working_dir="/w", rows=40, cols=100,
                            resize=[(50, 120)], user="u", env={"K": "V"})
    client.write_file("/w/a", b"\x00\xff")
    client.write_file("/w/b", "text", mode=0o600)
    client.read_file("/w/a")
    client.list_files("/w")
    client.log()
    try:
        client.log_stream(stdout=io.BytesIO(), timeout=0.3)
    except TimeoutError:
        pass
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    try:
        client.exec("sleep 10", cancel=stop)
    except RPCError:
        pass
    client.allow_list_add("b.com", "c.com")
    client.allow_list_delete("b.com")
    client.port_forward("9000", "19001:9001")
    client.port_forward_with_addresses(["127.0.0.1", "::1"], "19002:9002")
    # A second create replaces the first VM's options (and its hook listener).
    client.create(Sandbox("busybox").with_no_network().with_dns_servers("1.1.1.1").with_hostname("h").options())
    client.close(timeout=1.5)


class TestWireContract(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.contract = load_contract()
        cls.checker = Checker(cls.contract)
        cls.methods = cls.contract["methods"]

    def test_all_requests_conform(self) -> None:
        with Fake() as fake:
            exercise_everything(fake)
            own = fake.requests()
        sent = {m["method"] for m in own}
        self.assertEqual(sorted(set(self.methods) - sent), [], "every contract method is exercised")

        everything = _support.all_recorded_requests()
        self.assertGreaterEqual(len(everything), len(own))
        errors = [e for msg in everything for e in self.checker.request(msg, self.methods)]
        self.assertEqual(errors, [], "\n".join(errors[:50]))

        replies = _support.all_recorded("hook_reply")
        self.assertTrue(replies)
        reply_shape = self.contract["types"]["HookCallbackReply"]
        request_shape = self.contract["types"]["HookCallbackRequest"]
        for entry in replies:
            self.assertEqual(self.checker.obj(entry["reply"], reply_shape, "reply"), [])
            self.assertEqual(self.checker.obj(entry["request"], request_shape, "fake request"), [])

    def test_checker_catches_violations(self) -> None:
        bad = [
            {"jsonrpc": "2.0", "id": 1, "method": "write_file", "params": {"path": "/a", "content": "%%%"}},
            {"jsonrpc": "2.0", "id": 2, "method": "write_file", "params": {"path": "/a", "content": "", "mode": 1.5}},
            {"jsonrpc": "2.0", "id": 3, "method": "read_file", "params": {}},
            {"jsonrpc": "2.0", "id": 4, "method": "exec", "params": {"command": "x", "shell": True}},
            {"jsonrpc": "2.0", "method": "exec_pipe.stdin_eof", "params": {"id": 1}},
            {"jsonrpc": "2.0", "id": 5, "method": "create", "params": {"image": "i", "id": "vm-x"}},
            {"jsonrpc": "2.0", "id": 6, "method": "nope"},
        ]
        for msg in bad:
            self.assertTrue(self.checker.request(msg, self.methods), msg)

    def run_with_results(self, full: bool) -> None:
        results = {
            name: self.checker.sample_object(spec["result"], full)
            for name, spec in self.methods.items()
            if "result" in spec
        }
        path = _support.RECORD_DIR / f"results-{int(full)}.json"
        path.write_text(json.dumps(results), encoding="utf-8")
        with Fake(results=str(path), log_end="1") as fake:
            client = fake.client()
            self.assertEqual(client.create(Sandbox("busybox").options()), "sample")
            r = client.exec("echo x")
            self.assertEqual((r.exit_code, r.duration_ms, r.stdout_bytes, r.stderr_bytes),
                             (7, 7, b"\x00\xffsample", b"\x00\xffsample"))
            self.assertEqual(client.exec_stream("echo x").exit_code, 7)
            self.assertEqual(client.exec_pipe("cat", stdin=b"x").exit_code, 7)
            self.assertEqual(client.exec_interactive("sh").duration_ms, 7)
            self.assertIsNone(client.write_file("/a", b"x"))
            self.assertEqual(client.read_file("/a"), b"\x00\xffsample")
            files = client.list_files("/")
            self.assertEqual((files[0].name, files[0].size, files[0].mode, files[0].is_dir),
                             ("sample", 7, 7, True))
            self.assertEqual(files[0].mod_time, "sample" if full else "")
            # log's content is base64 in the contract (as the original sends it): decoded, as text.
            self.assertEqual(client.log(), b"\x00\xffsample".decode("utf-8", errors="replace"))
            self.assertIsNone(client.log_stream(stdout=io.BytesIO(), timeout=5))
            added = client.allow_list_add("a")
            self.assertEqual((added.changed, added.allowed_hosts), (["sample"], ["sample"]))
            removed = client.allow_list_delete("a")
            self.assertEqual(removed.changed, ["sample"])
            binding = client.port_forward("8080")[0]
            self.assertEqual((binding.address, binding.local_port, binding.remote_port), ("sample", 7, 7))
            client.close()

    def test_required_only_results_are_accepted(self) -> None:
        self.run_with_results(full=False)

    def test_full_results_are_accepted(self) -> None:
        self.run_with_results(full=True)


if __name__ == "__main__":
    unittest.main()
