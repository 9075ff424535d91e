namespace Matchlock.Core.Sandboxes;

/// <summary>The guest refused or failed one request (bad path, unknown user, ...); the sandbox is still usable.</summary>
public sealed class GuestOperationException : OperationFailedException
{
    public GuestOperationException(string message, string? errorCode) : base(message)
    {
        ErrorCode = errorCode;
    }

    public GuestOperationException(string message) : base(message)
    {
    }

    public GuestOperationException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>errno name or our own code, when the guest gave one.</summary>
    public string? ErrorCode { get; }
}
