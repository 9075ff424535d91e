namespace Matchlock.Core.Kernel;

/// <summary>What a VM boots: the kernel image and the initramfs built for it.</summary>
public sealed record BootArtifacts(string KernelPath, string InitramfsPath, string KernelVersion);
