namespace Matchlock.Core.Images.Registry;

/// <summary>
/// A pull from a registry failed. The message names the image and the cause, and the remedy when there
/// is one; <see cref="Kind"/> says what class of failure it is for callers that react differently
/// (retry on <see cref="RegistryErrorKind.Unreachable"/>, suggest <c>--platform</c>, …).
/// </summary>
public sealed class RegistryException : Exception
{
    public RegistryException()
    {
    }

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
        Kind = kind;
    }

    /// <summary>What went wrong; <see cref="RegistryErrorKind.Protocol"/> for the parameterless constructors.</summary>
    public RegistryErrorKind Kind { get; } = RegistryErrorKind.Protocol;
}
