using System.Text;

namespace Matchlock.Sdk;

/// <summary>Per-command settings.</summary>
public sealed record ExecOptions
{
    /// <summary>The working directory (default: the image's, else the workspace, else <c>/</c>).</summary>
    public string? WorkingDir { get; init; }

    /// <summary>The user: a uid, <c>uid:gid</c> or a name.</summary>
    public string? User { get; init; }

    /// <summary>Variables for this command, over the sandbox's.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }
}

/// <summary>How a command ended.</summary>
/// <param name="ExitCode">Its exit status.</param>
/// <param name="Duration">How long it ran, as the server measured.</param>
public sealed record ExecStatus(int ExitCode, TimeSpan Duration)
{
    /// <summary>Whether the exit status is 0.</summary>
    public bool Succeeded => ExitCode == 0;
}

/// <summary>A finished command and all its output (the bytes as the command wrote them).</summary>
/// <param name="ExitCode">Its exit status.</param>
/// <param name="Stdout">Its standard output.</param>
/// <param name="Stderr">Its standard error.</param>
/// <param name="Duration">How long it ran.</param>
public sealed record ExecResult(int ExitCode, byte[] Stdout, byte[] Stderr, TimeSpan Duration)
{
    /// <summary>Whether the exit status is 0.</summary>
    public bool Succeeded => ExitCode == 0;

    /// <summary><see cref="Stdout"/> decoded as UTF-8.</summary>
    public string StdoutText => Encoding.UTF8.GetString(Stdout);

    /// <summary><see cref="Stderr"/> decoded as UTF-8.</summary>
    public string StderrText => Encoding.UTF8.GetString(Stderr);
}

/// <summary>Which stream an <see cref="ExecOutput"/> belongs to.</summary>
public enum ExecOutputKind
{
    /// <summary>Standard output (or a terminal's output).</summary>
    Stdout,

    /// <summary>Standard error.</summary>
    Stderr,

    /// <summary>The command ended: <see cref="ExecOutput.Status"/> says how. Always the last item.</summary>
    Exit,
}

/// <summary>One item of a streamed command: a chunk of output, or (last) its exit.</summary>
public sealed record ExecOutput
{
    /// <summary>What this item is.</summary>
    public required ExecOutputKind Kind { get; init; }

    /// <summary>The bytes (empty for <see cref="ExecOutputKind.Exit"/>).</summary>
    public ReadOnlyMemory<byte> Data { get; init; }

    /// <summary>How the command ended (only for <see cref="ExecOutputKind.Exit"/>).</summary>
    public ExecStatus? Status { get; init; }

    /// <summary><see cref="Data"/> decoded as UTF-8 (a multi-byte character may be split across chunks).</summary>
    public string Text => Encoding.UTF8.GetString(Data.Span);
}

/// <summary>An entry of a guest directory.</summary>
public sealed record FileEntry(string Name, long Size, uint Mode, bool IsDirectory)
{
    /// <summary>Last modification, when the server reports it.</summary>
    public DateTimeOffset? ModifiedAt { get; init; }
}

/// <summary>A port forward: host <paramref name="LocalPort"/> to guest <paramref name="RemotePort"/>.</summary>
public sealed record PortForward(int LocalPort, int RemotePort)
{
    /// <summary>Parses <c>[LOCAL:]REMOTE</c> (LOCAL defaults to REMOTE), as <c>matchlock run -p</c>.</summary>
    /// <exception cref="FormatException">Not two ports in 1–65535.</exception>
    public static PortForward Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var parts = spec.Split(':');
        if (parts.Length is < 1 or > 2 || !parts.All(p => int.TryParse(p, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 65535))
        {
            throw new FormatException($"port forward '{spec}': expected [LOCAL:]REMOTE with ports 1-65535, e.g. 8080:80");
        }

        var remote = int.Parse(parts[^1], System.Globalization.CultureInfo.InvariantCulture);
        var local = parts.Length == 2 ? int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) : remote;
        return new PortForward(local, remote);
    }
}

/// <summary>A port forward the host is listening for.</summary>
public sealed record PortBinding(string Address, int LocalPort, int RemotePort);

/// <summary>The outcome of an allow-list change.</summary>
/// <param name="Changed">The hosts actually added (or removed).</param>
/// <param name="AllowedHosts">The whole allow-list now.</param>
public sealed record AllowListChange(IReadOnlyList<string> Changed, IReadOnlyList<string> AllowedHosts);

/// <summary>A named volume (<c>matchlock volume</c>).</summary>
public sealed record VolumeInfo(string Name, string Size, string Path);

/// <summary>Something the host reports about the sandbox (an <c>event</c> notification).</summary>
public sealed record SandboxEvent
{
    /// <summary><c>network</c> or <c>file</c>.</summary>
    public required string Type { get; init; }

    /// <summary>When it happened.</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>The request, for <c>network</c> events.</summary>
    public NetworkEvent? Network { get; init; }

    /// <summary>The operation, for <c>file</c> events.</summary>
    public FileEvent? File { get; init; }
}

/// <summary>An HTTP request the sandbox made, as the host's proxy saw it.</summary>
public sealed record NetworkEvent
{
    /// <summary>When it happened.</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>The HTTP method.</summary>
    public string? Method { get; init; }

    /// <summary>The URL.</summary>
    public string? Url { get; init; }

    /// <summary>The host.</summary>
    public string? Host { get; init; }

    /// <summary>The response status.</summary>
    public int? StatusCode { get; init; }

    /// <summary>Request bytes.</summary>
    public long? RequestBytes { get; init; }

    /// <summary>Response bytes.</summary>
    public long? ResponseBytes { get; init; }

    /// <summary>How long it took.</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>Whether the policy blocked it.</summary>
    public bool Blocked { get; init; }

    /// <summary>Why it was blocked.</summary>
    public string? BlockReason { get; init; }
}

/// <summary>
/// A file operation on a VFS mount that succeeded, as the host reports it (with
/// <see cref="VfsInterception.EmitEvents"/>; refused operations are not reported).
/// </summary>
/// <param name="Op">The operation (<see cref="VfsOps"/>).</param>
/// <param name="Path">The guest path.</param>
public sealed record FileEvent(string Op, string Path)
{
    /// <summary>When it happened.</summary>
    public DateTimeOffset Timestamp { get; init; }

    /// <summary>The target of a <c>rename</c> (or <c>link</c>).</summary>
    public string? NewPath { get; init; }

    /// <summary>The size involved: the bytes read or written for <c>read</c>/<c>write</c>, else the file's size.</summary>
    public long? Size { get; init; }

    /// <summary>The permission bits.</summary>
    public uint? Mode { get; init; }

    /// <summary>The owner's uid.</summary>
    public int? Uid { get; init; }

    /// <summary>The owner's gid.</summary>
    public int? Gid { get; init; }
}
