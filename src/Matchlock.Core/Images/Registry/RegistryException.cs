namespace Matchlock.Core.Images.Registry;

/// <summary>
/// A pull from a registry failed. The message names the image and the cause, and the remedy when there
/// is one; <see cref="Failure"/> says what class of failure it is for callers that react differently
/// (retry on <see cref="RegistryErrorKind.Unreachable"/>, suggest <c>--platform</c>, …).
/// </summary>
public sealed class RegistryException : SandboxStartException
{
    public RegistryException(string message)
        : base(message)
    {
    }

    public RegistryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public RegistryException(RegistryErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Failure = kind;
    }

    /// <summary>What went wrong; <see cref="RegistryErrorKind.Protocol"/> when not given.</summary>
    public RegistryErrorKind Failure { get; } = RegistryErrorKind.Protocol;
}
