using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Init;

/// <summary>What the boot leaves for the agent: the command line keys, the upper disk's mount, and
/// how long each phase took (milliseconds, reported to the host in hello).</summary>
internal sealed record BootResult(IReadOnlyDictionary<string, string> CommandLine, SafeFileHandle? UpperMount, IReadOnlyDictionary<string, long> Timings)
{
    /// <summary>The virtio-serial port name (matchlock.channel, default "matchlock").</summary>
    internal string ChannelName => CommandLine.TryGetValue("channel", out var name) && name.Length > 0 ? name : "matchlock";
}
