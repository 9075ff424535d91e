namespace Matchlock.Core.Network.Plumbing;

/// <summary>The sandbox network could not be created or changed; nothing it made is left behind.</summary>
public sealed class NetworkNamespaceException : SandboxStartException
{
    public NetworkNamespaceException(string message)
        : base(message)
    {
    }

    public NetworkNamespaceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
