namespace Matchlock.Core.Network.Plumbing;

/// <summary>The sandbox network could not be created or changed; nothing it made is left behind.</summary>
public sealed class SandboxNetworkException : SandboxStartException
{
    public SandboxNetworkException(string message)
        : base(message)
    {
    }

    public SandboxNetworkException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
