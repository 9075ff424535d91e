using Matchlock.Core.Events;

namespace Matchlock.Core.Network.Proxy;

/// <summary>Builds and publishes <see cref="NetworkEvent"/>s; a no-op without a log.</summary>
internal sealed class EventPublisher(SandboxEventLog? log, TimeProvider time)
{
    public void Publish(
        NetworkEventKind kind,
        string? host,
        int? port,
        string? method = null,
        string? path = null,
        string? protocol = null,
        int? status = null,
        string? reason = null,
        string? secret = null,
        string? hook = null,
        long? bytesUp = null,
        long? bytesDown = null,
        TimeSpan? duration = null)
    {
        log?.Publish(new NetworkEvent
        {
            Time = time.GetUtcNow(),
            Kind = kind,
            Host = host,
            Port = port,
            Method = method,
            Path = path,
            Protocol = protocol,
            Status = status,
            Reason = reason,
            Secret = secret,
            Hook = hook,
            BytesUp = bytesUp,
            BytesDown = bytesDown,
            DurationMs = duration?.TotalMilliseconds,
        });
    }
}
