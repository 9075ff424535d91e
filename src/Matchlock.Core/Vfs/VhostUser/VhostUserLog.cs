using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>The vhost-user backend's log messages (event ids 1210–1229).</summary>
internal static partial class VhostUserLog
{
    [LoggerMessage(EventId = 1210, Level = LogLevel.Debug, Message = "vhost-user: {Request} ({Size} bytes, {Fds} fds)")]
    public static partial void Message(ILogger log, VhostUserRequest request, int size, int fds);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Debug, Message = "vhost-user: guest memory mapped: {Regions} regions, {Bytes} bytes")]
    public static partial void MemoryMapped(ILogger log, int regions, ulong bytes);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Debug, Message = "vhost-user: queue {Index} started (size {Size}, base {Base})")]
    public static partial void QueueStarted(ILogger log, int index, uint size, ushort @base);

    [LoggerMessage(EventId = 1213, Level = LogLevel.Warning, Message = "vhost-user: queue {Index} stopped: {Reason}")]
    public static partial void QueueEnded(ILogger log, int index, string reason);

    [LoggerMessage(EventId = 1214, Level = LogLevel.Warning, Message = "vhost-user: queue {Index}: malformed chain at {Head} completed empty: {Reason}")]
    public static partial void MalformedChain(ILogger log, int index, ushort head, string reason);

    [LoggerMessage(EventId = 1215, Level = LogLevel.Warning, Message = "vhost-user: a malformed request: {Reason}")]
    public static partial void MalformedRequest(ILogger log, string reason);

    [LoggerMessage(EventId = 1216, Level = LogLevel.Error, Message = "vhost-user: queue {Index}: answering a request failed")]
    public static partial void ServeFailed(ILogger log, int index, Exception ex);

    [LoggerMessage(EventId = 1217, Level = LogLevel.Warning, Message = "vhost-user: queue {Index}: {Count} requests still running after the stop's wait")]
    public static partial void StopTimedOut(ILogger log, int index, int count);

    [LoggerMessage(EventId = 1218, Level = LogLevel.Information, Message = "vhost-user: the connection on {Socket} ended: {Reason}")]
    public static partial void SessionEnded(ILogger log, string socket, string reason);

    [LoggerMessage(EventId = 1219, Level = LogLevel.Warning, Message = "vhost-user: the connection on {Socket} was closed: {Reason}")]
    public static partial void SessionFailed(ILogger log, string socket, string reason);
}
