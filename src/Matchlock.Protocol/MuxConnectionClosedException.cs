namespace Matchlock.Protocol;

/// <summary>The link to the peer is gone (VM exited, transport closed). Nothing on it can continue.</summary>
public sealed class MuxConnectionClosedException : IOException
{
    public MuxConnectionClosedException(string message) : base(message)
    {
    }

    public MuxConnectionClosedException(string message, Exception? inner) : base(message, inner)
    {
    }
}
