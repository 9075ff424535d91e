using Microsoft.Extensions.Logging;

namespace Matchlock.Core.Sandboxes;

/// <summary>What a sandbox's life writes to its owner's log (category <c>Matchlock.Sandbox</c>, event ids 1100–1199). Names and ids only, never secret values.</summary>
internal static partial class SandboxLog
{
    public const string Category = "Matchlock.Sandbox";

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "sandbox {Id} is running (image {Image}, VMM pid {Pid}, {ElapsedMs} ms to ready)")]
    public static partial void Running(ILogger logger, string id, string image, int pid, long elapsedMs);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Error, Message = "sandbox {Id} could not start; everything it had made was released")]
    public static partial void StartFailed(ILogger logger, string id, Exception exception);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Information, Message = "stopping sandbox {Id} (graceful shutdown {GraceMs} ms)")]
    public static partial void Stopping(ILogger logger, string id, long graceMs);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Warning, Message = "the guest of {Id} did not power off within the graceful shutdown; its VMM is killed")]
    public static partial void GracefulStopFailed(ILogger logger, string id, Exception exception);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Information, Message = "sandbox {Id} released (VMM, network, disks{Removed})")]
    public static partial void Released(ILogger logger, string id, string removed);

    [LoggerMessage(EventId = 1105, Level = LogLevel.Warning, Message = "releasing sandbox {Id} failed: {Step}")]
    public static partial void ReleaseFailed(ILogger logger, string id, string step, Exception exception);
}
