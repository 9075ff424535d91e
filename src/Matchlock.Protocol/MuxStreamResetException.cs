namespace Matchlock.Protocol;

/// <summary>The peer aborted one stream; the connection itself is still usable.</summary>
public sealed class MuxStreamResetException : IOException
{
    public MuxStreamResetException(string message) : base(message)
    {
    }
}
