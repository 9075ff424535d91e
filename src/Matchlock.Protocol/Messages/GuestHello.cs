namespace Matchlock.Protocol.Messages;

/// <summary>The guest's first message: it is up, its root is mounted, and it serves requests.</summary>
public sealed record GuestHello
{
    public required string Version { get; init; }

    public int ProtocolVersion { get; init; } = ProtocolInfo.Version;

    public string? KernelRelease { get; init; }

    /// <summary>Guest uptime when hello was sent: where the boot time went.</summary>
    public long UptimeMs { get; init; }

    /// <summary>Milliseconds spent per init phase (modules, mounts, ...), for the boot breakdown.</summary>
    public IReadOnlyDictionary<string, long> Timings { get; init; } = new Dictionary<string, long>();
}
