namespace Matchlock.Core.Vm;

/// <summary>
/// The requested accelerator cannot be used on this host (e.g. <c>--accel kvm</c> without a
/// usable <c>/dev/kvm</c>). The caller can retry with <c>--accel tcg</c> or <c>auto</c>.
/// </summary>
public sealed class AccelUnavailableException : SandboxStartException
{
    public AccelUnavailableException(string message)
        : base(message)
    {
    }

    public AccelUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
