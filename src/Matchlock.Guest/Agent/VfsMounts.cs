using Matchlock.Guest.Diagnostics;

namespace Matchlock.Guest.Agent;

/// <summary>
/// The VFS mounts being relayed, so the power-off can end them before it syncs: a FUSE mount
/// whose server is gone would make every later access (and a sync's writeback) wait for replies
/// that never come.
/// </summary>
internal static class VfsMounts
{
    // How long the power-off waits for each relay to unmount and close its device.
    private static readonly TimeSpan EndTimeout = TimeSpan.FromSeconds(2);

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, Active> Mounted = new(StringComparer.Ordinal); // guarded by Gate: mount point → relay

    /// <summary>Registers a mount point; false when one is relayed there already.</summary>
    internal static bool TryAdd(string target, IVfsMountSession relay, Task ended)
    {
        lock (Gate)
        {
            return Mounted.TryAdd(target, new Active(relay, ended));
        }
    }

    internal static void Remove(string target)
    {
        lock (Gate)
        {
            Mounted.Remove(target);
        }
    }

    /// <summary>
    /// At power-off, after every process is gone: stops each relay, which unmounts (lazily) and
    /// closes its device, aborting the connection. Waits a little for each; best effort.
    /// </summary>
    internal static void UnmountAll()
    {
        Active[] active;
        lock (Gate)
        {
            active = [.. Mounted.Values];
        }

        foreach (var mount in active)
        {
            mount.Relay.Stop();
        }

        foreach (var mount in active)
        {
            if (!mount.Ended.Wait(EndTimeout))
            {
                GuestLog.Warn($"a VFS relay did not end within {EndTimeout.TotalSeconds:0} s of the power-off");
            }
        }
    }

    private sealed record Active(IVfsMountSession Relay, Task Ended);
}
