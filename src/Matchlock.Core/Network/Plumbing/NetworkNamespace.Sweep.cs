namespace Matchlock.Core.Network.Plumbing;

internal sealed partial class NetworkNamespace
{
    /// <summary>
    /// Crash reconciliation (docs/ARCHITECTURE.md D9): removes every <c>matchlock-&lt;vmid&gt;</c> namespace whose
    /// VM <paramref name="isAlive"/> says is gone and in which no process runs any more, with
    /// everything in it. Returns the VM ids whose namespaces were removed. Cheap when there is
    /// nothing to do (one directory listing).
    /// </summary>
    /// <remarks>
    /// Callers must create a VM's namespace only after its liveness record exists (the owner
    /// record), so a sweep that sees the namespace also sees the VM as alive.
    /// </remarks>
    public static async Task<IReadOnlyList<string>> SweepAsync(Func<string, bool> isAlive, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(isAlive);
        if (!Directory.Exists(NetnsDir))
        {
            return [];
        }

        var removed = new List<string>();
        foreach (var path in Directory.EnumerateFiles(NetnsDir, NamePrefix + "*"))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = Path.GetFileName(path);
            var vmId = name[NamePrefix.Length..];
            // A process inside (QEMU) means the VM is running, whatever the caller's records say:
            // namespaces are host-wide, records are per MATCHLOCK_HOME.
            if (vmId.Length == 0 || isAlive(vmId) || HasProcessesInside(path))
            {
                continue;
            }

            try
            {
                // The tap and the nftables table live in the namespace and go with it. A QEMU
                // still running inside keeps the (now nameless) namespace until it exits; the
                // VM sweeper kills such orphans first.
                await DeleteNamespaceAsync(name);
                removed.Add(vmId);
            }
            catch (NetworkNamespaceException)
            {
                // Not root, or busy: the next sweep tries again; a sweep never fails a start.
            }
        }

        return removed;
    }

    /// <summary>When the namespace was created (its file's change time), or null if it is gone.</summary>
    internal static DateTime? CreatedUtc(string vmId)
    {
        var info = new FileInfo(Path.Combine(NetnsDir, NamePrefix + vmId));
        return info.Exists ? info.LastWriteTimeUtc : null;
    }

    /// <summary>True when some process's network namespace is the one bound at <paramref name="path"/>.</summary>
    private static bool HasProcessesInside(string path)
    {
        string? target;
        try
        {
            // /proc/PID/ns/net links read "net:[INODE]"; a thread that joined the namespace
            // reads its own, which names it the same way.
            target = NamespaceThread.Run(path, () => new FileInfo("/proc/thread-self/ns/net").LinkTarget);
        }
        catch (NetworkNamespaceException)
        {
            return false;
        }

        if (target is null)
        {
            return false;
        }

        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            var pid = Path.GetFileName(proc);
            if (pid.Length == 0 || !char.IsAsciiDigit(pid[0]))
            {
                continue;
            }

            try
            {
                if (new FileInfo(Path.Combine(proc, "ns", "net")).LinkTarget == target)
                {
                    return true;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Exited while we looked, or not ours to inspect.
            }
        }

        return false;
    }
}
