namespace Matchlock.Protocol;

/// <summary>The peer broke the framing rules; the connection cannot be used any more.</summary>
public sealed class MuxProtocolException : IOException
{
    public MuxProtocolException(string message) : base(message)
    {
    }

    public MuxProtocolException(string message, Exception inner) : base(message, inner)
    {
    }
}
