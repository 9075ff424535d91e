using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Owner;

/// <summary>
/// What a sandbox owner writes to <c>owner.log</c> (category <c>Matchlock.Owner</c>, event ids
/// 1000–1099): what it did and every failure it survived. Operation names and ids only — never a
/// command line or a secret value.
/// </summary>
internal static partial class OwnerLog
{
    public const string Category = "Matchlock.Owner";

    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "serving the control socket {Path}")]
    public static partial void Serving(ILogger logger, string path);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "refused a control connection from uid {Uid} (not this user or root)")]
    public static partial void PeerRefused(ILogger logger, uint uid);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "accepting on the control socket failed; retrying in {DelayMs} ms")]
    public static partial void AcceptFailed(ILogger logger, long delayMs, Exception exception);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Debug, Message = "control request {Op}")]
    public static partial void Request(ILogger logger, string op);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "control request {Op} failed: {Reason}")]
    public static partial void RequestFailed(ILogger logger, string op, string reason);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Debug, Message = "a control connection ended: {Reason}")]
    public static partial void ConnectionEnded(ILogger logger, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "kill requested through the control socket")]
    public static partial void KillRequested(ILogger logger);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Information, Message = "stopping: {Reason}")]
    public static partial void Stopping(ILogger logger, string reason);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "the control request {Op} could not be answered (the client left)")]
    public static partial void AnswerLost(ILogger logger, string op);
}
