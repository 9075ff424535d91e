namespace Matchlock.Core.Vm;

/// <summary>What the user asked for with <c>--accel</c> / <c>MATCHLOCK_ACCEL</c>.</summary>
public enum AccelMode
{
    /// <summary>KVM when it really works here, else TCG with a notice.</summary>
    Auto,

    /// <summary>KVM or a clear error; never a silent fallback.</summary>
    Kvm,

    /// <summary>Always TCG.</summary>
    Tcg,
}
