using Matchlock.Guest.Interop;
using Matchlock.Guest.Users;

namespace Matchlock.Guest.Processes;

/// <summary>
/// Finds argv[0] the way execvp(3) and shells do, but against the requested environment's PATH
/// (posix_spawnp would search ours) and with the target user's permissions (we are root; the
/// command may not be).
/// </summary>
internal sealed class ExecutableResolver
{
    private readonly Func<string, FileProbe?> _probe;

    /// <param name="probe">stat(2) of a path, null when it does not exist; injectable for tests.</param>
    internal ExecutableResolver(Func<string, FileProbe?>? probe = null)
    {
        _probe = probe ?? StatProbe;
    }

    /// <summary>
    /// A name containing '/' is used as given (relative to <paramref name="workingDirectory"/>);
    /// otherwise each PATH entry is tried in order (an empty entry means the working directory),
    /// skipping candidates the user cannot execute. Shell conventions for failures: 127 when
    /// nothing is found, 126 when something was found but cannot be executed.
    /// </summary>
    internal ExecutableResolution Resolve(string name, string? pathVariable, string workingDirectory, ExecUser user)
    {
        if (name.Length == 0)
        {
            return ExecutableResolution.Failed(127, "exec: empty command name");
        }

        if (name.Contains('/', StringComparison.Ordinal))
        {
            var probe = _probe(Combine(workingDirectory, name));
            return probe switch
            {
                null => ExecutableResolution.Failed(127, $"exec: {name}: no such file or directory"),
                { IsDirectory: true } => ExecutableResolution.Failed(126, $"exec: {name}: is a directory"),
                { } p when !CanExecute(p, user) => ExecutableResolution.Failed(126, $"exec: {name}: permission denied"),
                _ => ExecutableResolution.Found(name),
            };
        }

        var sawNotExecutable = false;
        foreach (var directory in (pathVariable ?? EnvironmentBuilder.DefaultPath).Split(':'))
        {
            var candidate = directory.Length == 0 ? name : $"{directory.TrimEnd('/')}/{name}";
            var probe = _probe(Combine(workingDirectory, candidate));
            if (probe is not { IsRegular: true } p)
            {
                continue;
            }

            if (CanExecute(p, user))
            {
                return ExecutableResolution.Found(candidate);
            }

            sawNotExecutable = true;
        }

        return sawNotExecutable
            ? ExecutableResolution.Failed(126, $"exec: {name}: permission denied")
            : ExecutableResolution.Failed(127, $"exec: {name}: not found");
    }

    /// <summary>
    /// execve's permission rule: root may execute a regular file with any x bit; others use the
    /// owner, group (primary or supplementary) or other bits, first class that matches.
    /// </summary>
    internal static bool CanExecute(FileProbe probe, ExecUser user)
    {
        if (!probe.IsRegular)
        {
            return false;
        }

        if (user.Uid == 0)
        {
            return (probe.Mode & 0b001_001_001) != 0;
        }

        if (probe.Uid == user.Uid)
        {
            return (probe.Mode & 0b001_000_000) != 0;
        }

        if (probe.Gid == user.Gid || user.SupplementaryGroups.Contains(probe.Gid))
        {
            return (probe.Mode & 0b000_001_000) != 0;
        }

        return (probe.Mode & 0b000_000_001) != 0;
    }

    private static string Combine(string workingDirectory, string path) =>
        path.StartsWith('/') ? path : $"{workingDirectory.TrimEnd('/')}/{path}";

    private static unsafe FileProbe? StatProbe(string path)
    {
        StatBuffer buffer;
        if (Libc.stat(path, &buffer) != 0)
        {
            return null;
        }

        var type = buffer.Mode & 0xF000; // S_IFMT
        return new FileProbe(type == 0x4000, type == 0x8000, buffer.Mode & 0xFFF, buffer.Uid, buffer.Gid);
    }
}
