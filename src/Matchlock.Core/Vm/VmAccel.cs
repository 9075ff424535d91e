namespace Matchlock.Core.Vm;

/// <summary>How QEMU executes guest code (docs/ARCHITECTURE.md D2).</summary>
public enum VmAccel
{
    /// <summary>Hardware virtualization through <c>/dev/kvm</c>; CPU model <c>host</c>.</summary>
    Kvm,

    /// <summary>QEMU's software emulator; CPU model <c>max</c>. Correct everywhere, several times slower.</summary>
    Tcg,
}
