using System.Globalization;
using System.Text.Json;

namespace Matchlock.Sdk.Internal;

/// <summary>
/// The request params the SDK writes and the result fields it reads (contract/rpc.json). Only
/// fields the contract lists are written; unset options are left out so the server's defaults apply.
/// </summary>
internal static class Wire
{
    public static string ActionName(NetworkHookAction action) => action switch
    {
        NetworkHookAction.Allow => "allow",
        NetworkHookAction.Block => "block",
        _ => "mutate",
    };

    public static string PhaseName(NetworkHookPhase phase) => phase == NetworkHookPhase.After ? "after" : "before";

    /// <summary>Callback rules keyed by <c>network_hook_&lt;index+1&gt;</c>, the index counted over the whole rule list.</summary>
    public static Dictionary<string, NetworkHookRule> CallbackRules(SandboxOptions options)
    {
        var rules = new Dictionary<string, NetworkHookRule>(StringComparer.Ordinal);
        for (var i = 0; i < options.NetworkRules.Count; i++)
        {
            if (options.NetworkRules[i].Hook is not null)
            {
                rules[CallbackId(i)] = options.NetworkRules[i];
            }
        }

        return rules;
    }

    private static string CallbackId(int index) => "network_hook_" + (index + 1).ToString(CultureInfo.InvariantCulture);

    /// <summary>Refuses options the server would refuse or misread, with the fix in the message.</summary>
    /// <exception cref="ArgumentException">Something in <paramref name="options"/> is wrong.</exception>
    public static void Validate(SandboxOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Image))
        {
            throw new ArgumentException("SandboxOptions.Image is required (e.g. \"busybox\")", nameof(options));
        }

        if (options.NoNetwork && (options.AllowHosts.Count > 0 || options.Secrets.Count > 0 || options.Intercept || options.NetworkRules.Count > 0 || options.AllowTcp.Count > 0))
        {
            throw new ArgumentException("NoNetwork conflicts with AllowHosts, Secrets, Intercept, NetworkRules and AllowTcp: a sandbox without a NIC has nothing to filter", nameof(options));
        }

        foreach (var rule in options.NetworkRules)
        {
            if (rule.Hook is not null && rule.Action is { } action && action != NetworkHookAction.Allow)
            {
                throw new ArgumentException($"network rule '{rule.Name}': a callback rule decides per request; leave Action unset (the hook returns NetworkHookResult.Block to block)", nameof(options));
            }
        }

        foreach (var forward in options.PortForwards)
        {
            ValidateForward(forward);
        }

        if (options.VfsInterception is { } vfs)
        {
            VfsLocalHooks.Validate(vfs);
        }
    }

    public static void ValidateForward(PortForward forward)
    {
        if (forward.LocalPort is < 1 or > 65535 || forward.RemotePort is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(forward), forward, "port forward ports must be in 1-65535");
        }
    }

    public static void WriteCreate(Utf8JsonWriter w, SandboxOptions options, bool launchEntrypoint, string? callbackSocket)
    {
        w.WriteString("image", options.Image);
        if (options.Privileged)
        {
            w.WriteBoolean("privileged", true);
        }

        if (launchEntrypoint)
        {
            w.WriteBoolean("launch_entrypoint", true);
        }

        if (options.Cpus is not null || options.MemoryMb is not null || options.DiskSizeMb is not null || options.TimeoutSeconds is not null)
        {
            w.WriteStartObject("resources");
            WriteOptional(w, "cpus", options.Cpus);
            WriteOptional(w, "memory_mb", options.MemoryMb);
            WriteOptional(w, "disk_size_mb", options.DiskSizeMb);
            WriteOptional(w, "timeout_seconds", options.TimeoutSeconds);
            w.WriteEndObject();
        }

        WriteNetwork(w, options, callbackSocket);
        WriteVfs(w, options);
        if (options.Env is { Count: > 0 } env)
        {
            WriteStringMap(w, "env", env);
        }

        if (options.ExtraDisks.Count > 0)
        {
            w.WriteStartArray("extra_disks");
            foreach (var disk in options.ExtraDisks)
            {
                w.WriteStartObject();
                w.WriteString("host_path", disk.HostPath);
                w.WriteString("guest_mount", disk.GuestMount);
                if (disk.ReadOnly)
                {
                    w.WriteBoolean("readonly", true);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        if (options.ImageConfig is { } image)
        {
            w.WriteStartObject("image_config");
            WriteOptional(w, "user", image.User);
            WriteOptional(w, "working_dir", image.WorkingDir);
            if (image.Entrypoint is { } entrypoint)
            {
                WriteStrings(w, "entrypoint", entrypoint);
            }

            if (image.Cmd is { } cmd)
            {
                WriteStrings(w, "cmd", cmd);
            }

            if (image.Env is { } imageEnv)
            {
                WriteStringMap(w, "env", imageEnv);
            }

            w.WriteEndObject();
        }
    }

    /// <summary>
    /// <c>network</c>, shaped as the original clients send it: nothing when no network option is
    /// set; <c>{no_network, dns_servers?, hostname?}</c> without a NIC; otherwise always
    /// <c>allowed_hosts</c> and <c>block_private_ips</c> plus what is set.
    /// </summary>
    private static void WriteNetwork(Utf8JsonWriter w, SandboxOptions o, string? callbackSocket)
    {
        var rules = o.NetworkRules.Count > 0;
        var any = o.NoNetwork || o.AllowHosts.Count > 0 || o.AddHosts.Count > 0 || o.Secrets.Count > 0 || rules || o.Intercept
            || o.DnsServers.Count > 0 || o.Hostname is not null || o.Mtu is not null || o.BlockPrivateIps is not null || o.AllowTcp.Count > 0;
        if (!any)
        {
            return;
        }

        w.WriteStartObject("network");
        if (o.NoNetwork)
        {
            w.WriteBoolean("no_network", true);
        }
        else
        {
            WriteStrings(w, "allowed_hosts", o.AllowHosts);
            w.WriteBoolean("block_private_ips", o.BlockPrivateIps ?? true);
            if (o.Intercept || rules)
            {
                w.WriteBoolean("intercept", true);
            }

            if (rules)
            {
                w.WriteStartObject("interception");
                w.WriteStartArray("rules");
                for (var i = 0; i < o.NetworkRules.Count; i++)
                {
                    WriteRule(w, o.NetworkRules[i], i);
                }

                w.WriteEndArray();
                WriteOptional(w, "callback_socket", callbackSocket);
                w.WriteEndObject();
            }

            if (o.Secrets.Count > 0)
            {
                w.WriteStartObject("secrets");
                foreach (var secret in o.Secrets)
                {
                    w.WriteStartObject(secret.Name);
                    w.WriteString("value", secret.Value);
                    WriteOptional(w, "placeholder", secret.Placeholder);
                    WriteStrings(w, "hosts", secret.Hosts);
                    w.WriteEndObject();
                }

                w.WriteEndObject();
            }

            WriteOptional(w, "mtu", o.Mtu);
            if (o.AddHosts.Count > 0)
            {
                w.WriteStartArray("add_hosts");
                foreach (var mapping in o.AddHosts)
                {
                    w.WriteStartObject();
                    w.WriteString("host", mapping.Host);
                    w.WriteString("ip", mapping.Ip);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            if (o.AllowTcp.Count > 0)
            {
                WriteStrings(w, "allow_tcp", o.AllowTcp);
            }
        }

        if (o.DnsServers.Count > 0)
        {
            WriteStrings(w, "dns_servers", o.DnsServers);
        }

        WriteOptional(w, "hostname", o.Hostname);
        w.WriteEndObject();
    }

    private static void WriteRule(Utf8JsonWriter w, NetworkHookRule rule, int index)
    {
        w.WriteStartObject();
        WriteOptional(w, "name", rule.Name);
        if (rule.Phase is { } phase)
        {
            w.WriteString("phase", PhaseName(phase));
        }

        if (rule.Action is { } action)
        {
            w.WriteString("action", ActionName(action));
        }

        WriteNonEmpty(w, "hosts", rule.Hosts);
        WriteNonEmpty(w, "methods", rule.Methods);
        WriteOptional(w, "path", rule.Path);
        if (rule.SetHeaders is { Count: > 0 } setHeaders)
        {
            WriteStringMap(w, "set_headers", setHeaders);
        }

        WriteNonEmpty(w, "delete_headers", rule.DeleteHeaders);
        if (rule.SetQuery is { Count: > 0 } setQuery)
        {
            WriteStringMap(w, "set_query", setQuery);
        }

        WriteNonEmpty(w, "delete_query", rule.DeleteQuery);
        WriteOptional(w, "rewrite_path", rule.RewritePath);
        if (rule.SetResponseHeaders is { Count: > 0 } setResponseHeaders)
        {
            WriteStringMap(w, "set_response_headers", setResponseHeaders);
        }

        WriteNonEmpty(w, "delete_response_headers", rule.DeleteResponseHeaders);
        if (rule.BodyReplacements.Count > 0)
        {
            WriteBodyReplacements(w, rule.BodyReplacements);
        }

        if (rule.Hook is not null)
        {
            w.WriteString("callback_id", CallbackId(index));
        }

        if (rule.Timeout is { } timeout)
        {
            w.WriteNumber("timeout_ms", (long)Math.Ceiling(timeout.TotalMilliseconds));
        }

        w.WriteEndObject();
    }

    /// <summary>
    /// <c>vfs</c>: the mounts and the host rules. Rules with a callback run in this process and
    /// are left out; their after-hooks need the file events, so <c>emit_events</c> is sent true.
    /// </summary>
    private static void WriteVfs(Utf8JsonWriter w, SandboxOptions o)
    {
        var interception = o.VfsInterception;
        var hostRules = interception?.Rules.Where(r => !VfsLocalHooks.IsLocal(r)).ToList() ?? [];
        var emitEvents = interception is not null && (interception.EmitEvents || interception.Rules.Any(r => r.Hook is not null || r.DangerousHook is not null));
        var writeInterception = hostRules.Count > 0 || emitEvents;
        if (o.Workspace is null && o.Mounts is not { Count: > 0 } && !writeInterception)
        {
            return;
        }

        w.WriteStartObject("vfs");
        WriteOptional(w, "workspace", o.Workspace);
        if (o.Mounts is { Count: > 0 } mounts)
        {
            w.WriteStartObject("mounts");
            foreach (var (guestPath, mount) in mounts)
            {
                w.WriteStartObject(guestPath);
                w.WriteString("type", mount.Type);
                WriteOptional(w, "host_path", mount.HostPath);
                if (mount.ReadOnly)
                {
                    w.WriteBoolean("readonly", true);
                }

                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        if (writeInterception)
        {
            w.WriteStartObject("interception");
            if (emitEvents)
            {
                w.WriteBoolean("emit_events", true);
            }

            if (hostRules.Count > 0)
            {
                w.WriteStartArray("rules");
                foreach (var rule in hostRules)
                {
                    w.WriteStartObject();
                    w.WriteString("action", rule.Action == VfsHookAction.Block ? "block" : "allow");
                    WriteOptional(w, "name", rule.Name);
                    if (rule.Phase is { } phase)
                    {
                        w.WriteString("phase", phase == VfsHookPhase.After ? "after" : "before");
                    }

                    WriteNonEmpty(w, "ops", rule.Ops);
                    WriteOptional(w, "path", rule.Path);
                    if (rule.Timeout is { } timeout)
                    {
                        w.WriteNumber("timeout_ms", (long)Math.Ceiling(timeout.TotalMilliseconds));
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    /// <summary><c>ExecParams</c> / <c>ExecTtyParams</c> (without rows and cols).</summary>
    public static void WriteExec(Utf8JsonWriter w, string command, ExecOptions? options)
    {
        w.WriteString("command", command);
        if (options is null)
        {
            return;
        }

        WriteOptional(w, "working_dir", options.WorkingDir);
        WriteOptional(w, "user", options.User);
        if (options.Env is { Count: > 0 } env)
        {
            WriteStringMap(w, "env", env);
        }
    }

    public static void WriteBodyReplacements(Utf8JsonWriter w, IReadOnlyList<BodyReplacement> replacements)
    {
        w.WriteStartArray("body_replacements");
        foreach (var replacement in replacements)
        {
            w.WriteStartObject();
            w.WriteString("find", replacement.Find);
            w.WriteString("replace", replacement.Replace);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    public static void WriteStringMap(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, string> map)
    {
        w.WriteStartObject(name);
        foreach (var (key, value) in map)
        {
            w.WriteString(key, value);
        }

        w.WriteEndObject();
    }

    public static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }

        w.WriteEndArray();
    }

    private static void WriteNonEmpty(Utf8JsonWriter w, string name, IReadOnlyList<string> values)
    {
        if (values.Count > 0)
        {
            WriteStrings(w, name, values);
        }
    }

    private static void WriteOptional(Utf8JsonWriter w, string name, string? value)
    {
        if (value is not null)
        {
            w.WriteString(name, value);
        }
    }

    private static void WriteOptional(Utf8JsonWriter w, string name, int? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
    }

    private static void WriteOptional(Utf8JsonWriter w, string name, double? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
    }

    // ---- results ----

    public static Dictionary<string, string> ReadStringMap(JsonElement element)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (element.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in element.EnumerateObject())
            {
                map[property.Name] = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString()! : property.Value.GetRawText();
            }
        }

        return map;
    }

    /// <summary>A required field of a result; its absence is the server breaking the contract.</summary>
    public static JsonElement Required(JsonElement result, string method, string name) =>
        result.ValueKind == JsonValueKind.Object && result.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value
            : throw new MatchlockRpcException(MatchlockRpcException.InternalError, $"{method}: the server's result has no '{name}' (contract/rpc.json says it must)");

    public static byte[] Base64(JsonElement result, string method, string name)
    {
        var value = Required(result, method, name);
        return value.ValueKind == JsonValueKind.String && value.TryGetBytesFromBase64(out var bytes)
            ? bytes
            : throw new MatchlockRpcException(MatchlockRpcException.InternalError, $"{method}: '{name}' is not base64");
    }

    public static ExecStatus Status(JsonElement result, string method) =>
        new(Required(result, method, "exit_code").GetInt32(), TimeSpan.FromMilliseconds(Required(result, method, "duration_ms").GetInt64()));

    public static IReadOnlyList<string> Strings(JsonElement result, string method, string name) =>
        Required(result, method, name).EnumerateArray().Select(e => e.GetString() ?? "").ToArray();

    public static SandboxEvent Event(JsonElement p)
    {
        var timestamp = Integer(p, "timestamp") is { } ms
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : DateTimeOffset.UtcNow;
        NetworkEvent? network = null;
        if (p.TryGetProperty("network", out var n) && n.ValueKind == JsonValueKind.Object)
        {
            network = new NetworkEvent
            {
                Timestamp = timestamp,
                Method = String(n, "method"),
                Url = String(n, "url"),
                Host = String(n, "host"),
                StatusCode = (int?)Integer(n, "status_code"),
                RequestBytes = Integer(n, "request_bytes"),
                ResponseBytes = Integer(n, "response_bytes"),
                Duration = Integer(n, "duration_ms") is { } d ? TimeSpan.FromMilliseconds(d) : null,
                Blocked = n.TryGetProperty("blocked", out var b) && b.ValueKind == JsonValueKind.True,
                BlockReason = String(n, "block_reason"),
            };
        }

        FileEvent? file = null;
        if (p.TryGetProperty("file", out var f) && f.ValueKind == JsonValueKind.Object)
        {
            file = new FileEvent(String(f, "op") ?? "", String(f, "path") ?? "")
            {
                Timestamp = timestamp,
                NewPath = String(f, "new_path"),
                Size = Integer(f, "size"),
                Mode = (uint?)Integer(f, "mode"),
                Uid = (int?)Integer(f, "uid"),
                Gid = (int?)Integer(f, "gid"),
            };
        }

        return new SandboxEvent { Type = String(p, "type") ?? "", Timestamp = timestamp, Network = network, File = file };
    }

    public static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    public static long? Integer(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) ? n : null;
}
