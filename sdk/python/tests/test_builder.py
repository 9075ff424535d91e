"""Sandbox builder and option types."""

from __future__ import annotations

import tempfile
import unittest

import _support  # noqa: F401

from matchlock import (
    CreateOptions,
    ImageConfig,
    NetworkBodyTransform,
    NetworkHookRule,
    NetworkInterceptionConfig,
    RPCError,
    Sandbox,
)


class TestSandbox(unittest.TestCase):
    def test_every_method_chains(self) -> None:
        s = Sandbox("img")
        chain = [
            s.with_privileged(), s.with_cpus(1.5), s.with_memory(1), s.with_disk_size(1),
            s.with_timeout(1), s.with_kernel(""), s.with_env("K", "V"), s.with_env_map({"A": "B"}),
            s.with_user("u"), s.with_working_dir("/w"), s.with_entrypoint("sh"), s.with_cmd("x"),
            s.with_image_config(ImageConfig()), s.allow_host("a"), s.allow_tcp("a:22"),
            s.add_host("h", "1.2.3.4"), s.block_private_ips(), s.allow_private_ips(),
            s.with_block_private_ips(True), s.unset_block_private_ips(), s.with_network_mtu(1400),
            s.with_no_network(), s.with_dns_servers("1.1.1.1"), s.with_hostname("h"),
            s.with_network_interception(), s.add_secret("K", "V"), s.add_secret_with_placeholder("K", "V", "P"),
            s.with_port_forward(1, 2), s.with_port_forward_addresses("127.0.0.1"), s.with_workspace("/w"),
            s.mount_memory("/m"), s.mount_host_dir("/g", "/h"), s.mount_host_dir_readonly("/g2", "/h"),
            s.mount_overlay("/o", "/h"), s.add_disk("/d", "/mnt"),
        ]
        self.assertTrue(all(x is s for x in chain))
        self.assertIsInstance(s.options(), CreateOptions)

    def test_values(self) -> None:
        o = (
            Sandbox("python:3.12")
            .with_cpus(0.5)
            .allow_host("a.com")
            .allow_host("b.com", "c.com")
            .add_secret("KEY", "v", "a.com", "b.com")
            .add_secret("K2", "v2", placeholder="PH")
            .with_dns_servers("1.1.1.1")
            .with_dns_servers("8.8.8.8")
            .options()
        )
        self.assertEqual(o.cpus, 0.5)
        self.assertEqual(o.allowed_hosts, ["a.com", "b.com", "c.com"])
        self.assertEqual(o.secrets[0].to_dict(), {"value": "v", "hosts": ["a.com", "b.com"]})
        self.assertEqual(o.secrets[1].to_dict(), {"value": "v2", "hosts": [], "placeholder": "PH"})
        self.assertEqual(o.dns_servers, ["1.1.1.1", "8.8.8.8"])

    def test_private_ip_flags(self) -> None:
        o = Sandbox("i").block_private_ips().options()
        self.assertEqual((o.block_private_ips, o.block_private_ips_set), (True, True))
        o = Sandbox("i").allow_private_ips().options()
        self.assertEqual((o.block_private_ips, o.block_private_ips_set), (False, True))
        o = Sandbox("i").block_private_ips().unset_block_private_ips().options()
        self.assertEqual((o.block_private_ips, o.block_private_ips_set), (False, False))

    def test_network_interception(self) -> None:
        o = Sandbox("i").with_network_interception().options()
        self.assertTrue(o.force_interception)
        self.assertIsNone(o.network_interception)
        cfg = NetworkInterceptionConfig(rules=[NetworkHookRule(phase="after")])
        self.assertIs(Sandbox("i").with_network_interception(cfg).options().network_interception, cfg)

    def test_image_config_merges(self) -> None:
        o = Sandbox("i").with_user("nobody").with_image_config(ImageConfig(working_dir="/tmp")).options()
        self.assertEqual((o.image_config.user, o.image_config.working_dir), ("nobody", "/tmp"))
        o = Sandbox("i").with_image_config(ImageConfig(user="root")).with_user("nobody").options()
        self.assertEqual(o.image_config.user, "nobody")

    def test_secret_from_file(self) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write("s3cr3t\n")
            f.flush()
            o = Sandbox("i").add_secret_from_file("TOKEN", f.name, "api.x").options()
        self.assertEqual((o.secrets[0].value, o.secrets[0].hosts), ("s3cr3t", ["api.x"]))

    def test_independent_instances(self) -> None:
        self.assertEqual(Sandbox("a").allow_host("x").options().allowed_hosts, ["x"])
        self.assertEqual(Sandbox("b").options().allowed_hosts, [])


class TestTypes(unittest.TestCase):
    def test_rule_to_dict_sends_only_what_is_set(self) -> None:
        self.assertEqual(NetworkHookRule().to_dict(), {"action": "allow"})
        rule = NetworkHookRule(
            name="n", phase="after", hosts=["h"], methods=["GET"], path="/p", action="mutate",
            set_headers={"A": "1"}, delete_headers=["B"], set_query={"q": "1"}, delete_query=["r"],
            rewrite_path="/x", set_response_headers={"C": "2"}, delete_response_headers=["D"],
            body_replacements=[NetworkBodyTransform("a"), NetworkBodyTransform("b", "c")], timeout_ms=10,
        )
        self.assertEqual(rule.to_dict()["body_replacements"], [{"find": "a"}, {"find": "b", "replace": "c"}])
        self.assertEqual(len(rule.to_dict()), 15)

    def test_rpc_error(self) -> None:
        e = RPCError(-32003, "cancelled")
        self.assertTrue(e.is_cancelled())
        self.assertFalse(e.is_vm_error() or e.is_exec_error() or e.is_file_error())
        self.assertEqual((e.code, e.message, str(e)), (-32003, "cancelled", "[-32003] cancelled"))


if __name__ == "__main__":
    unittest.main()
