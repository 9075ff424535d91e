using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Matchlock.Guest.Interop;
using Matchlock.Guest.Users;

namespace Matchlock.Guest.Processes;

/// <summary>
/// <c>matchlock-guest __matchlock_exec_as UID GID GROUPS CGROUP -- PATH ARGV0 ARGS…</c>: move into
/// the sandbox cgroup, switch identity, then execv PATH with ARGV0 ARGS… in this same process (so
/// the pid the spawner registered is the command's pid). GROUPS is a comma list or "-" for none;
/// CGROUP the sandbox group's cgroup.procs, or "-" to stay where we are. The environment is inherited untouched
/// (execv passes our environ on), so it is exactly what the spawner gave posix_spawn.
/// </summary>
/// <remarks>
/// Single purpose: Main dispatches here before doing anything else. Errors go to fd 2, which is
/// already the command's stderr (pipe or PTY), and end the process with the shell's codes
/// (126 cannot execute, 127 not found) without managed shutdown.
/// </remarks>
internal static unsafe class ExecAsHelper
{
    internal const string Verb = "__matchlock_exec_as";

    internal static IReadOnlyList<string> BuildArguments(ExecUser user, string path, IReadOnlyList<string> arguments, string? cgroupProcs = null)
    {
        var groups = user.SupplementaryGroups.Count == 0
            ? "-"
            : string.Join(',', user.SupplementaryGroups.Select(g => g.ToString(CultureInfo.InvariantCulture)));
        var result = new List<string>(arguments.Count + 7)
        {
            "matchlock-exec-as",
            Verb,
            user.Uid.ToString(CultureInfo.InvariantCulture),
            user.Gid.ToString(CultureInfo.InvariantCulture),
            groups,
            cgroupProcs ?? "-",
            "--",
            path,
        };
        result.AddRange(arguments);
        return result;
    }

    /// <summary>Runs the helper; returns only on failure (as the exit code).</summary>
    internal static int Run(string[] args)
    {
        // args: Verb UID GID GROUPS CGROUP -- PATH ARGV0 [ARGS…]
        if (args.Length < 8 || args[5] != "--"
            || !UserDatabase.TryParseId(args[1], out var uid)
            || !UserDatabase.TryParseId(args[2], out var gid)
            || !TryParseGroups(args[3], out var groups))
        {
            return Fail(126, $"{Verb}: usage: {Verb} UID GID GROUPS|- CGROUP_PROCS|- -- PATH ARGV0 [ARGS...]");
        }

        if (args[4] != "-")
        {
            // Into the sandbox group before the command exists, and the OOM score of a user
            // process rather than the agent's: for non-root users this closes the window that
            // ChildPlacement leaves (the agent's own move, right after the spawn, is a no-op then).
            // Best effort: the agent's move still follows, and a failure here must not stop the command.
            TryWrite(args[4], "0"u8);
            TryWrite("/proc/self/oom_score_adj", "0"u8);
        }

        fixed (uint* list = groups)
        {
            // Order matters: groups and gid while we still have CAP_SETGID, uid last.
            if (Libc.setgroups((nuint)groups.Length, groups.Length == 0 ? null : list) != 0)
            {
                return Fail(126, $"exec: setgroups: {Error()}");
            }
        }

        if (Libc.setgid(gid) != 0)
        {
            return Fail(126, $"exec: setgid {gid}: {Error()}");
        }

        if (Libc.setuid(uid) != 0)
        {
            return Fail(126, $"exec: setuid {uid}: {Error()}");
        }

        var path = args[6];
        using var argv = new NativeStringArray(args[7..]);
        var pathNative = NativeStringArray.AllocUtf8(path);
        Libc.execv(pathNative, argv.Pointer);
        var errno = Marshal.GetLastPInvokeError();
        NativeMemory.Free(pathNative);
        return Fail(errno == Errno.ENOENT ? 127 : 126, $"exec: {path}: {Error(errno)}");
    }

    /// <summary>One write(2) to a file that exists (cgroup and proc files); errors ignored, see the caller.</summary>
    private static void TryWrite(string path, ReadOnlySpan<byte> text)
    {
        var fd = Libc.open(path, LibcConstants.O_WRONLY | LibcConstants.O_CLOEXEC, 0);
        if (fd < 0)
        {
            return;
        }

        fixed (byte* p = text)
        {
            _ = Libc.write(fd, p, (nuint)text.Length);
        }

        _ = Libc.close(fd);
    }

    private static bool TryParseGroups(string text, out uint[] groups)
    {
        groups = [];
        if (text == "-")
        {
            return true;
        }

        var parts = text.Split(',');
        var parsed = new uint[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!UserDatabase.TryParseId(parts[i], out parsed[i]))
            {
                return false;
            }
        }

        groups = parsed;
        return true;
    }

    private static string Error(int? errno = null) =>
        Marshal.GetPInvokeErrorMessage(errno ?? Marshal.GetLastPInvokeError()).ToLower(CultureInfo.InvariantCulture);

    private static int Fail(int code, string message)
    {
        FileDescriptors.WriteAll(2, Encoding.UTF8.GetBytes(message + "\n"));
        Libc._exit(code);
        return code;
    }
}
