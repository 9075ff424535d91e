using System.Net;
using Matchlock.Core.Images;
using Matchlock.Core.Network;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Sandboxes;
using Matchlock.Core.Vfs;
using Matchlock.Core.Vfs.Hooks;

namespace Matchlock.Rpc;

/// <summary>
/// <c>create</c>'s config (docs/COMPATIBILITY.md "Wire protocol", contract/rpc.json CreateParams)
/// read into a <see cref="SandboxSpec"/> plus what the rpc server applies itself. Every bad field
/// is an -32602 naming it, found before anything is created.
/// </summary>
internal sealed record CreateConfig
{
    public required SandboxSpec Spec { get; init; }

    /// <summary><c>image_config</c>: laid field by field over the image's config once the image is known.</summary>
    public ImageConfigOverride ImageConfig { get; init; } = new();

    /// <summary><c>env</c>: "KEY=VALUE" added to every command's environment.</summary>
    public IReadOnlyList<string> Env { get; init; } = [];

    /// <summary><c>launch_entrypoint</c>: start the image's ENTRYPOINT + CMD in the background, logged.</summary>
    public bool LaunchEntrypoint { get; init; }

    /// <summary><c>interception.callback_socket</c>: where the SDK serves its callback hooks.</summary>
    public string? CallbackSocket { get; init; }

    public static CreateConfig Read(RpcParams p)
    {
        p.Forbid("id", "the server chooses the sandbox's id; leave it out");

        var image = p.String("image").Trim();
        if (image.Length == 0)
        {
            throw RpcException.InvalidParams("params.image is required (e.g. alpine:latest)");
        }

        _ = p.Bool("privileged", false); // accepted: the guest's root already has every capability inside its VM
        var resources = p.OptionalObject("resources");
        var network = p.OptionalObject("network");
        var noNetwork = network?.Bool("no_network", false) ?? false;
        var spec = new SandboxSpec
        {
            Image = image,
            Cpus = resources?.OptionalNumber("cpus") is { } cpus ? cpus : 1,
            MemoryMb = resources?.OptionalInt32("memory_mb", 1, 1 << 20) ?? 512,
            DiskSizeMb = resources?.OptionalInt32("disk_size_mb", 1, 1 << 24) ?? 5120,
            // resources.timeout_seconds is accepted and ignored, as the original never enforces it.
            Hostname = network?.OptionalString("hostname") is { Length: > 0 } host ? host : null,
            NoNetwork = noNetwork,
            Network = noNetwork || network is not { } n ? new SandboxNetworkSpec() : ReadNetwork(n),
            Disks = [.. p.ObjectArray("extra_disks").Select(ReadDisk)],
            Mounts = p.OptionalObject("vfs") is { } vfs ? ReadMounts(vfs) : [],
            VfsInterception = p.OptionalObject("vfs")?.OptionalObject("interception") is { } vfsHooks ? ReadVfsInterception(vfsHooks) : null,
            RemoveOnDispose = false, // a first-class sandbox: listed until `matchlock rm`
        };
        if (noNetwork && network is { } nn && (nn.OptionalStringArray("allowed_hosts") is { Count: > 0 } || nn.ObjectMembers("secrets").Count > 0))
        {
            throw RpcException.InvalidParams("params.network: no_network cannot be combined with allowed_hosts or secrets");
        }

        try
        {
            spec.Validate();
            spec.Network.Validate();
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            throw RpcException.InvalidParams(ex.Message);
        }

        var imageConfig = p.OptionalObject("image_config");
        return new CreateConfig
        {
            Spec = spec,
            Env = [.. (p.OptionalStringMap("env") ?? []).Select(kv => $"{kv.Key}={kv.Value}")],
            LaunchEntrypoint = p.Bool("launch_entrypoint", false),
            CallbackSocket = network?.OptionalObject("interception")?.OptionalString("callback_socket"),
            ImageConfig = imageConfig is not { } ic ? new ImageConfigOverride() : new ImageConfigOverride
            {
                User = ic.OptionalString("user"),
                WorkingDir = ic.OptionalString("working_dir"),
                Entrypoint = ic.OptionalStringArray("entrypoint"),
                Cmd = ic.OptionalStringArray("cmd"),
                Env = ic.OptionalStringMap("env")?.Select(kv => $"{kv.Key}={kv.Value}").ToList(),
            },
        };
    }

    private static SandboxNetworkSpec ReadNetwork(RpcParams n)
    {
        var secrets = new List<string>();
        var placeholders = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, secret) in n.ObjectMembers("secrets"))
        {
            if (secret.OptionalString("placeholder") is { Length: > 0 } placeholder)
            {
                placeholders[name] = placeholder;
            }

            var value = secret.String("value");
            var hosts = secret.OptionalStringArray("hosts") ?? [];
            if (hosts.Count == 0)
            {
                throw RpcException.InvalidParams($"params.network.secrets.{name}.hosts: name the hosts the secret may be sent to (it is never sent anywhere else)");
            }

            if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal) || name.Contains('@', StringComparison.Ordinal))
            {
                throw RpcException.InvalidParams($"params.network.secrets: \"{name}\" is not a variable name");
            }

            // The value is never part of an error message (SecretSpec's messages name only the secret).
            secrets.Add($"{name}={value}@{string.Join(',', hosts)}");
        }

        var addHosts = n.ObjectArray("add_hosts").Select(h =>
        {
            var host = h.String("host");
            var ip = h.String("ip");
            return IPAddress.TryParse(ip, out var address)
                ? KeyValuePair.Create(host, address)
                : throw RpcException.InvalidParams($"params.network.add_hosts: \"{ip}\" (for {host}) is not an IP address");
        }).ToList();
        var dns = (n.OptionalStringArray("dns_servers") ?? []).Select(d => IPAddress.TryParse(d, out var address)
            ? address
            : throw RpcException.InvalidParams($"params.network.dns_servers: \"{d}\" is not an IP address")).ToList();
        var interception = n.OptionalObject("interception");
        return new SandboxNetworkSpec
        {
            AllowHosts = SandboxNetworkSpec.SplitList(n.OptionalStringArray("allowed_hosts")),
            AllowTcp = SandboxNetworkSpec.SplitList(n.OptionalStringArray("allow_tcp")),
            Secrets = secrets,
            SecretPlaceholders = placeholders,
            AddHosts = addHosts,
            DnsServers = dns,
            Mtu = n.OptionalInt32("mtu", 576, 65535) ?? 1500,
            Intercept = n.Bool("intercept", false),
            // ours: a missing block_private_ips keeps the safe default (the original's quirk made it false).
            AllowPrivate = !n.Bool("block_private_ips", true),
            Hooks = interception is { } i ? [.. i.ObjectArray("rules").Select((r, index) => HookRules.Read(r, index))] : [],
        };
    }

    /// <summary>
    /// <c>vfs{workspace, mounts{"/guest/path": {type, host_path, readonly}}}</c> (docs/VFS.md): host_fs
    /// (readonly → ro), overlay, memory.
    /// </summary>
    private static IReadOnlyList<VfsMountSpec> ReadMounts(RpcParams vfs)
    {
        var workspace = vfs.OptionalString("workspace") is { Length: > 0 } w ? w : VfsMountSpec.DefaultWorkspace;
        var mounts = new List<VfsMountSpec>();
        foreach (var (guest, mount) in vfs.ObjectMembers("mounts"))
        {
            var where = $"params.vfs.mounts.{guest}";
            var type = (mount.OptionalString("type") ?? "host_fs").Trim().ToLowerInvariant();
            var readOnly = mount.Bool("readonly", false);
            var hostPath = mount.OptionalString("host_path");
            try
            {
                var guestPath = VfsMountSpec.GuestPathOf(guest, VfsMountSpec.GuestPathOf(workspace, "/", "params.vfs.workspace"), where);
                mounts.Add(type switch
                {
                    "memory" => new VfsMountSpec(guestPath, VfsMountType.Memory),
                    "host_fs" or "real_fs" => VfsMountSpec.OfHostPath(guestPath, readOnly ? VfsMountType.ReadOnly : VfsMountType.HostFs, HostPath(hostPath, where), where),
                    "overlay" => VfsMountSpec.OfHostPath(guestPath, VfsMountType.Overlay, HostPath(hostPath, where), where),
                    _ => throw RpcException.InvalidParams($"{where}.type \"{type}\": expected host_fs, memory or overlay"),
                });
            }
            catch (ArgumentException ex)
            {
                throw RpcException.InvalidParams(ex.Message);
            }
        }

        return mounts;
    }

    /// <summary>
    /// <c>vfs.interception{emit_events, rules:[{name, phase, ops, path, action, timeout_ms}]}</c>
    /// (docs/VFS.md "Hooks and events"): rules are checked on the host per operation. The SDKs keep
    /// their callback hooks to themselves (before-hooks for their own file calls, after-hooks on
    /// <c>file</c> events), so a wire rule is allow or block.
    /// </summary>
    private static VfsInterception ReadVfsInterception(RpcParams interception)
    {
        var rules = interception.ObjectArray("rules").Select((r, index) =>
        {
            var where = $"params.vfs.interception.rules[{index}]";
            var phase = (r.OptionalString("phase") ?? "").Trim().ToLowerInvariant() switch
            {
                "" or "before" => VfsHookPhase.Before,
                "after" => VfsHookPhase.After,
                var other => throw RpcException.InvalidParams($"{where}.phase \"{other}\": expected before or after"),
            };
            var action = (r.OptionalString("action") ?? "").Trim().ToLowerInvariant() switch
            {
                "" or "allow" => VfsHookAction.Allow,
                "block" => VfsHookAction.Block,
                var other => throw RpcException.InvalidParams($"{where}.action \"{other}\": expected allow or block (callback and mutate hooks run in the SDK's process)"),
            };
            return new VfsHookRule
            {
                Name = r.OptionalString("name") ?? "",
                Phase = phase,
                Ops = [.. (r.OptionalStringArray("ops") ?? []).Select(o => o.Trim().ToLowerInvariant()).Where(o => o.Length > 0)],
                Path = r.OptionalString("path") ?? "",
                Action = action,
                TimeoutMs = r.OptionalInt32("timeout_ms", 0, 3_600_000) ?? 0,
            };
        }).ToList();
        var result = new VfsInterception { Rules = rules, EmitEvents = interception.Bool("emit_events", false) };
        try
        {
            result.Validate();
        }
        catch (VfsHookRuleException ex)
        {
            throw RpcException.InvalidParams("params." + ex.Message);
        }

        return result;
    }

    /// <summary>A mount's <c>host_path</c>: an absolute path of an existing folder or file.</summary>
    private static string HostPath(string? hostPath, string where) =>
        hostPath is { Length: > 0 } && Path.IsPathFullyQualified(hostPath) && Path.Exists(hostPath)
            ? Path.GetFullPath(hostPath)
            : throw RpcException.InvalidParams($"{where}.host_path: an absolute path of an existing host folder or file is required (got \"{hostPath}\")");

    private static DiskMount ReadDisk(RpcParams d)
    {
        var host = d.String("host_path");
        var guest = d.String("guest_mount");
        try
        {
            return DiskMount.Parse($"{host}:{guest}{(d.Bool("readonly", false) ? ":ro" : "")}");
        }
        catch (ArgumentException ex)
        {
            throw RpcException.InvalidParams("params.extra_disks: " + ex.Message);
        }
    }
}

/// <summary><c>image_config</c>: each field given replaces the image's (its <c>env</c> replaces the image's environment).</summary>
internal sealed record ImageConfigOverride
{
    public string? User { get; init; }

    public string? WorkingDir { get; init; }

    public IReadOnlyList<string>? Entrypoint { get; init; }

    public IReadOnlyList<string>? Cmd { get; init; }

    public IReadOnlyList<string>? Env { get; init; }

    public ImageConfig Apply(ImageConfig image) => image with
    {
        User = User ?? image.User,
        WorkingDir = WorkingDir ?? image.WorkingDir,
        Entrypoint = Entrypoint ?? image.Entrypoint,
        Cmd = Cmd ?? image.Cmd,
        Env = Env ?? image.Env,
    };
}
