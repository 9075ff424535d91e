using Matchlock.Core.Sandboxes;
using Matchlock.Core.State;

namespace Matchlock.Cli.Commands;

/// <summary>The <see cref="VmConfig"/> a <c>run</c> records for <c>matchlock get</c> (docs/COMPATIBILITY.md "CLI"): never a secret's value.</summary>
internal static class RunConfig
{
    /// <summary>
    /// The config of the sandbox <paramref name="spec"/> describes, running <paramref name="exec"/> (null:
    /// none), with <paramref name="userEnv"/> the caller's own <c>KEY=VALUE</c> settings.
    /// </summary>
    public static VmConfig From(SandboxSpec spec, ExecSpec? exec, IEnumerable<string> userEnv, string? workingDir, string? user)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in userEnv)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                env[entry[..eq]] = entry[(eq + 1)..];
            }
        }

        return new VmConfig
        {
            Image = spec.Image,
            Cpus = spec.Cpus,
            MemoryMb = spec.MemoryMb,
            DiskSizeMb = spec.DiskSizeMb,
            Hostname = spec.Hostname,
            Env = env,
            WorkingDir = workingDir,
            User = user,
            Command = exec?.Argv,
            NoNetwork = spec.NoNetwork,
            AllowedHosts = spec.Network.AllowHosts,
            Secrets = [.. spec.Network.Secrets.Select(SecretName)],
            AddHosts = [.. spec.Network.AddHosts.Select(h => $"{h.Key}:{h.Value}")],
        };
    }

    /// <summary>The name of a <c>NAME[=VALUE]@hosts</c> secret, without looking its value up.</summary>
    private static string SecretName(string secret)
    {
        var end = secret.IndexOfAny(['=', '@']);
        return end < 0 ? secret : secret[..end];
    }
}
