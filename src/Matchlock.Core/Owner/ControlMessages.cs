using System.Text.Json.Serialization;
using System.Text.Json;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Owner;

/// <summary>
/// One request on the control socket (docs/ARCHITECTURE.md D9), the payload of a stream's opening frame.
/// <c>exec</c> streams stdin/stdout/stderr on the stream's channels and takes resize/signal
/// controls (the guest protocol's <see cref="Matchlock.Protocol.Messages.ExecControl"/>).
/// </summary>
public sealed record ControlRequest
{
    public const string Exec = "exec";
    public const string Allow = "allow";
    public const string Disallow = "disallow";
    public const string Kill = "kill";
    public const string PortConnect = "port_connect";

    public required string Op { get; init; }

    /// <summary>exec: the command. Env entries are "KEY=VALUE" laid over the image's environment.</summary>
    public IReadOnlyList<string>? Argv { get; init; }

    public IReadOnlyList<string>? Env { get; init; }

    public string? WorkingDir { get; init; }

    public string? User { get; init; }

    public bool Tty { get; init; }

    public bool Stdin { get; init; }

    public int Rows { get; init; } = TerminalDefaults.Rows;

    public int Cols { get; init; } = TerminalDefaults.Cols;

    /// <summary>port_connect: the guest TCP port; the client's bytes go on stdin, the service's come back on stdout.</summary>
    public int Port { get; init; }

    /// <summary>allow / disallow: host patterns (comma lists accepted).</summary>
    public IReadOnlyList<string>? Hosts { get; init; }
}

/// <summary>The final reply of a control stream.</summary>
public sealed record ControlReply
{
    public bool Ok { get; init; }

    public string? Error { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    /// <summary>allow / disallow: the allow-list after the change.</summary>
    public IReadOnlyList<string>? AllowList { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlReply))]
internal sealed partial class OwnerJsonContext : JsonSerializerContext
{
    public static byte[] Serialize(ControlRequest value) => JsonSerializer.SerializeToUtf8Bytes(value, Default.ControlRequest);

    public static byte[] Serialize(ControlReply value) => JsonSerializer.SerializeToUtf8Bytes(value, Default.ControlReply);

    /// <exception cref="OwnerProtocolException">Not a control message.</exception>
    public static ControlRequest ReadRequest(ReadOnlyMemory<byte> json) => Read(json, static j => JsonSerializer.Deserialize(j.Span, Default.ControlRequest));

    /// <exception cref="OwnerProtocolException">Not a control message.</exception>
    public static ControlReply ReadReply(ReadOnlyMemory<byte> json) => Read(json, static j => JsonSerializer.Deserialize(j.Span, Default.ControlReply));

    private static T Read<T>(ReadOnlyMemory<byte> json, Func<ReadOnlyMemory<byte>, T?> parse)
        where T : class
    {
        try
        {
            return parse(json) ?? throw new OwnerProtocolException($"empty {typeof(T).Name}");
        }
        catch (JsonException ex)
        {
            throw new OwnerProtocolException($"malformed {typeof(T).Name}: {ex.Message}", ex);
        }
    }
}
