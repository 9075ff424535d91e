namespace Matchlock.Core;

/// <summary>What a caller can do after a <see cref="MatchlockException"/>; the CLI and the RPC server map errors by it.</summary>
public enum MatchlockErrorKind
{
    /// <summary>The input was wrong (a flag, a path, a name); nothing was created. Fix it and try again.</summary>
    InvalidInput,

    /// <summary>
    /// The sandbox could not start, or what it starts from could not be had (image, registry,
    /// kernel, acceleration, VM, network set-up). Nothing is left behind.
    /// </summary>
    StartFailed,

    /// <summary>The sandbox is gone: stopped, crashed, or its owner cannot be reached. Start a new one.</summary>
    SandboxGone,

    /// <summary>One operation failed (an exec, a file, a port, a store change); the sandbox or store is still usable.</summary>
    OperationFailed,
}

/// <summary>
/// The one base of the errors Matchlock raises on purpose, typed by what the caller can do next
/// (<see cref="Kind"/>): its message says what went wrong and how to fix it, and is meant to be
/// shown as it is. Anything else that escapes is a bug.
/// </summary>
public abstract class MatchlockException : Exception
{
    protected MatchlockException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }

    public abstract MatchlockErrorKind Kind { get; }
}

/// <summary>Bad input detected where it could only be checked against the host (a file that is not an ext4 image, a missing volume).</summary>
public class InvalidInputException(string message, Exception? inner = null) : MatchlockException(message, inner)
{
    public override MatchlockErrorKind Kind => MatchlockErrorKind.InvalidInput;
}

/// <summary>The sandbox could not start (or its image, kernel or acceleration could not be had); nothing is left running.</summary>
public class SandboxStartException(string message, Exception? inner = null) : MatchlockException(message, inner)
{
    public override MatchlockErrorKind Kind => MatchlockErrorKind.StartFailed;
}

/// <summary>The sandbox stopped, crashed or cannot be reached; nothing more can be done with it.</summary>
public class SandboxGoneException(string message, Exception? inner = null) : MatchlockException(message, inner)
{
    public override MatchlockErrorKind Kind => MatchlockErrorKind.SandboxGone;
}

/// <summary>One operation failed; the sandbox (or the store it was about) is still usable.</summary>
public class OperationFailedException(string message, Exception? inner = null) : MatchlockException(message, inner)
{
    public override MatchlockErrorKind Kind => MatchlockErrorKind.OperationFailed;
}
