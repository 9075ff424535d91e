namespace Matchlock.Protocol.Messages;

/// <summary>The final reply of any request. Fields not relevant to a request are null.</summary>
public sealed record GuestReply
{
    public bool Ok { get; init; } = true;

    /// <summary>Human-readable cause when <see cref="Ok"/> is false.</summary>
    public string? Error { get; init; }

    /// <summary>Machine-readable cause: an errno name (ENOENT, EACCES, ...) or our own code.</summary>
    public string? ErrorCode { get; init; }

    /// <summary>exec: the exit status (128+N when killed by signal N, shell convention).</summary>
    public int? ExitCode { get; init; }

    /// <summary>exec: the signal that killed the command, if one did.</summary>
    public int? Signal { get; init; }

    /// <summary>exec: wall time in the guest from spawn to exit.</summary>
    public long? DurationMs { get; init; }

    /// <summary>read_file: bytes sent.</summary>
    public long? Size { get; init; }

    public IReadOnlyList<FileEntry>? Files { get; init; }

    public static GuestReply Failure(string error, string? code = null) => new() { Ok = false, Error = error, ErrorCode = code };
}

public sealed record FileEntry(string Name, long Size, int Mode, long ModTimeUnix, bool IsDir);
