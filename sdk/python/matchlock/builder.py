"""Fluent builder for sandbox options.

    sandbox = (
        Sandbox("python:3.12-alpine")
        .allow_host("api.openai.com")
        .add_secret("API_KEY", os.environ["API_KEY"], "api.openai.com")
    )
    vm_id = client.launch(sandbox)
"""

from __future__ import annotations

from .types import (
    CreateOptions,
    ExtraDisk,
    HostIPMapping,
    ImageConfig,
    MountConfig,
    NetworkInterceptionConfig,
    PortForward,
    Secret,
    VFSInterceptionConfig,
)


class Sandbox:
    """Collects :class:`CreateOptions` through chainable calls."""

    def __init__(self, image: str) -> None:
        self._opts = CreateOptions(image=image)

    # ── Machine ──────────────────────────────────────────────────────

    def with_privileged(self, privileged: bool = True) -> Sandbox:
        """Skip the in-guest hardening (seccomp, dropped capabilities)."""
        self._opts.privileged = privileged
        return self

    def with_cpus(self, cpus: float) -> Sandbox:
        self._opts.cpus = cpus
        return self

    def with_memory(self, mb: int) -> Sandbox:
        self._opts.memory_mb = mb
        return self

    def with_disk_size(self, mb: int) -> Sandbox:
        self._opts.disk_size_mb = mb
        return self

    def with_timeout(self, seconds: int) -> Sandbox:
        """Sent as ``resources.timeout_seconds`` (accepted, not enforced)."""
        self._opts.timeout_seconds = seconds
        return self

    def with_kernel(self, ref: str) -> Sandbox:
        """Kept for source compatibility: ``create`` refuses a kernel ref."""
        self._opts.kernel_ref = ref
        return self

    # ── Environment and image ────────────────────────────────────────

    def with_env(self, name: str, value: str) -> Sandbox:
        self._opts.env[name] = value
        return self

    def with_env_map(self, env: dict[str, str]) -> Sandbox:
        self._opts.env.update(env)
        return self

    def _image_config(self) -> ImageConfig:
        if self._opts.image_config is None:
            self._opts.image_config = ImageConfig()
        return self._opts.image_config

    def with_user(self, user: str) -> Sandbox:
        """Run commands as ``uid``, ``uid:gid`` or a user name."""
        self._image_config().user = user
        return self

    def with_working_dir(self, path: str) -> Sandbox:
        self._image_config().working_dir = path
        return self

    def with_entrypoint(self, *entrypoint: str) -> Sandbox:
        self._image_config().entrypoint = list(entrypoint)
        return self

    def with_cmd(self, *cmd: str) -> Sandbox:
        self._image_config().cmd = list(cmd)
        return self

    def with_image_config(self, config: ImageConfig) -> Sandbox:
        """Merge ``config`` field by field; empty fields leave the current value."""
        current = self._image_config()
        if config.user:
            current.user = config.user
        if config.working_dir:
            current.working_dir = config.working_dir
        if config.entrypoint:
            current.entrypoint = list(config.entrypoint)
        if config.cmd:
            current.cmd = list(config.cmd)
        if config.env:
            current.env = dict(config.env)
        return self

    # ── Network ──────────────────────────────────────────────────────

    def allow_host(self, *hosts: str) -> Sandbox:
        self._opts.allowed_hosts.extend(hosts)
        return self

    def allow_tcp(self, *rules: str) -> Sandbox:
        """Raw TCP rules ``HOST:PORT`` (this server's ``--allow-tcp``)."""
        self._opts.allow_tcp.extend(rules)
        return self

    def add_host(self, host: str, ip: str) -> Sandbox:
        """Resolve ``host`` to ``ip`` inside the guest (``--add-host``)."""
        self._opts.add_hosts.append(HostIPMapping(host=host, ip=ip))
        return self

    def block_private_ips(self) -> Sandbox:
        return self.with_block_private_ips(True)

    def allow_private_ips(self) -> Sandbox:
        return self.with_block_private_ips(False)

    def with_block_private_ips(self, enabled: bool) -> Sandbox:
        self._opts.block_private_ips = enabled
        self._opts.block_private_ips_set = True
        return self

    def unset_block_private_ips(self) -> Sandbox:
        self._opts.block_private_ips = False
        self._opts.block_private_ips_set = False
        return self

    def with_network_mtu(self, mtu: int) -> Sandbox:
        self._opts.network_mtu = mtu
        return self

    def with_no_network(self) -> Sandbox:
        self._opts.no_network = True
        return self

    def with_dns_servers(self, *servers: str) -> Sandbox:
        self._opts.dns_servers.extend(servers)
        return self

    def with_hostname(self, hostname: str) -> Sandbox:
        self._opts.hostname = hostname
        return self

    def with_network_interception(
        self, config: NetworkInterceptionConfig | None = None
    ) -> Sandbox:
        """Turn interception on (even with an empty allow-list) and set rules."""
        self._opts.force_interception = True
        if config is not None:
            self._opts.network_interception = config
        return self

    def add_secret(
        self, name: str, value: str, *hosts: str, placeholder: str = ""
    ) -> Sandbox:
        self._opts.secrets.append(
            Secret(name=name, value=value, hosts=list(hosts), placeholder=placeholder)
        )
        return self

    def add_secret_with_placeholder(
        self, name: str, value: str, placeholder: str, *hosts: str
    ) -> Sandbox:
        return self.add_secret(name, value, *hosts, placeholder=placeholder)

    def add_secret_from_file(
        self, name: str, path: str, *hosts: str, placeholder: str = ""
    ) -> Sandbox:
        """Like :meth:`add_secret`, the value read from ``path`` (one trailing
        newline dropped)."""
        with open(path, encoding="utf-8") as f:
            value = f.read()
        if value.endswith("\n"):
            value = value[:-1]
            if value.endswith("\r"):
                value = value[:-1]
        return self.add_secret(name, value, *hosts, placeholder=placeholder)

    def with_port_forward(self, local_port: int, remote_port: int) -> Sandbox:
        """Forward host ``local_port`` to guest ``remote_port`` after create."""
        self._opts.port_forwards.append(
            PortForward(local_port=local_port, remote_port=remote_port)
        )
        return self

    def with_port_forward_addresses(self, *addresses: str) -> Sandbox:
        self._opts.port_forward_addresses.extend(addresses)
        return self

    # ── Files ────────────────────────────────────────────────────────

    def with_workspace(self, path: str) -> Sandbox:
        self._opts.workspace = path
        return self

    def mount(self, guest_path: str, config: MountConfig) -> Sandbox:
        self._opts.mounts[guest_path] = config
        return self

    def mount_host_dir(self, guest_path: str, host_path: str) -> Sandbox:
        return self.mount(guest_path, MountConfig(type="host_fs", host_path=host_path))

    def mount_host_dir_readonly(self, guest_path: str, host_path: str) -> Sandbox:
        return self.mount(
            guest_path, MountConfig(type="host_fs", host_path=host_path, readonly=True)
        )

    def mount_memory(self, guest_path: str) -> Sandbox:
        return self.mount(guest_path, MountConfig(type="memory"))

    def mount_overlay(self, guest_path: str, host_path: str) -> Sandbox:
        return self.mount(guest_path, MountConfig(type="overlay", host_path=host_path))

    def with_vfs_interception(self, config: VFSInterceptionConfig) -> Sandbox:
        self._opts.vfs_interception = config
        return self

    def add_disk(self, host_path: str, guest_mount: str, readonly: bool = False) -> Sandbox:
        """Attach an ext4 image as a block device (``--disk``)."""
        self._opts.extra_disks.append(
            ExtraDisk(host_path=host_path, guest_mount=guest_mount, readonly=readonly)
        )
        return self

    # ── Result ───────────────────────────────────────────────────────

    def options(self) -> CreateOptions:
        return self._opts
