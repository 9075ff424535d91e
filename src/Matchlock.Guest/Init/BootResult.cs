using Matchlock.Guest.Interop;
using Microsoft.Win32.SafeHandles;

namespace Matchlock.Guest.Init;

/// <summary>What the boot leaves for the agent: the command line keys, the upper disk's mount,
/// how long each phase took (milliseconds, reported to the host in hello), and the VFS modules
/// kept open for the first vfs_mount (their files are gone with the initramfs).</summary>
internal sealed record BootResult(IReadOnlyDictionary<string, string> CommandLine, SafeFileHandle? UpperMount, IReadOnlyDictionary<string, long> Timings, IReadOnlyList<RetainedModule> VfsModules)
{
    /// <summary>The virtio-serial port name (matchlock.channel, default "matchlock").</summary>
    internal string ChannelName => CommandLine.TryGetValue("channel", out var name) && name.Length > 0 ? name : "matchlock";
}
