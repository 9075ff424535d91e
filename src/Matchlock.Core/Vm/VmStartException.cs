namespace Matchlock.Core.Vm;

/// <summary>
/// The VMM did not get to a running, connected state. Nothing is left running. The message
/// includes QEMU's own stderr and the console tail so the user can see why.
/// </summary>
public sealed class VmStartException : SandboxStartException
{
    public VmStartException(string message)
        : base(message)
    {
    }

    public VmStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
