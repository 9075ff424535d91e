namespace Matchlock.Core.State;

/// <summary>
/// The VM state database could not be used (written by a newer matchlock, not writable, corrupt),
/// an id is unknown, or a VM could not be released. The message says what to do.
/// </summary>
public sealed class VmStateException : OperationFailedException
{
    public VmStateException(string message)
        : base(message)
    {
    }

    public VmStateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
