namespace Matchlock.Core.Sandboxes;

/// <summary>Where a sandbox's start-up time went (for <c>bench/boot</c> and <c>--debug</c> output).</summary>
public sealed record BootTimings
{
    /// <summary>Image lookup, kernel/initramfs, upper disk, VM directory.</summary>
    public TimeSpan HostSetup { get; init; }

    /// <summary>QEMU start until it connected to the channel socket.</summary>
    public TimeSpan VmmStart { get; init; }

    /// <summary>Guest uptime when the guest binary's Main ran: the kernel's own boot (incl. initramfs unpack).</summary>
    public TimeSpan Kernel { get; init; }

    /// <summary>The guest binary's phases (modules, mounts, ...), as it reported them.</summary>
    public TimeSpan GuestInit { get; init; }

    /// <summary>Host-side wall time from VMM connected to hello received.</summary>
    public TimeSpan VmmToHello { get; init; }

    /// <summary>Configure request round trip.</summary>
    public TimeSpan Configure { get; init; }

    public TimeSpan Total { get; init; }

    public IReadOnlyDictionary<string, long> GuestPhases { get; init; } = new Dictionary<string, long>();

    /// <summary>The breakdown from the host's marks (elapsed since the start began) and the guest's hello.</summary>
    internal static BootTimings From(Protocol.Messages.GuestHello hello, TimeSpan hostSetup, TimeSpan vmmStarted, TimeSpan helloAt, TimeSpan total)
    {
        // The guest reports its phases and their total; older guests only the phases.
        var guestInit = TimeSpan.FromMilliseconds(hello.Timings.TryGetValue("init_total", out var sum) ? sum : 0);
        var kernel = TimeSpan.FromMilliseconds(hello.Timings.TryGetValue("main_uptime", out var main) ? main : hello.UptimeMs - guestInit.TotalMilliseconds);
        return new BootTimings
        {
            HostSetup = hostSetup,
            VmmStart = vmmStarted - hostSetup,
            VmmToHello = helloAt - vmmStarted,
            GuestInit = guestInit,
            Kernel = kernel,
            Configure = total - helloAt,
            Total = total,
            GuestPhases = hello.Timings,
        };
    }
}
