namespace Matchlock.Protocol.Framing;

/// <summary>Channel numbers within a stream. Each has its own flow-control window and EOF.</summary>
public static class StreamChannel
{
    /// <summary>Host to guest: a command's stdin, or a file's content for write_file.</summary>
    public const byte Stdin = 0;

    /// <summary>Guest to host: a command's stdout (or the PTY), or a file's content for read_file.</summary>
    public const byte Stdout = 1;

    /// <summary>Guest to host: a command's stderr.</summary>
    public const byte Stderr = 2;

    /// <summary>Number of channels a stream has.</summary>
    public const int Count = 3;
}
