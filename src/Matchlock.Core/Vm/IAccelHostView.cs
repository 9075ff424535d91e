namespace Matchlock.Core.Vm;

/// <summary>What <see cref="AccelSelector"/> needs to know about the host; faked in tests.</summary>
internal interface IAccelHostView
{
    string? GetEnvironmentVariable(string name);

    /// <summary>Opens /dev/kvm read-write; null on success, else why not.</summary>
    string? TryOpenKvm();

    /// <summary>docs/PLATFORM.md "Acceleration": PVM's /dev/kvm runs only special guest kernels; treat it as no KVM.</summary>
    bool IsKvmPvmLoaded { get; }

    /// <summary>/proc/sys/kernel/random/boot_id: probe results are cached per host boot.</summary>
    string? BootId { get; }

    string? ReadProbeCache();

    void WriteProbeCache(string content);

    /// <summary>Boots a kernel under KVM; true when it reached its panic and QEMU exited.</summary>
    Task<bool> ProbeKvmAsync(CancellationToken cancellationToken);
}
