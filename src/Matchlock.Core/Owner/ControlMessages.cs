using System.Text.Json;
using System.Text.Json.Serialization;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Owner;

/// <summary>
/// One request on the control socket (docs/ARCHITECTURE.md D9), the payload of a stream's opening
/// frame: which operation, and its arguments. <c>exec</c> carries the guest protocol's own
/// <see cref="ExecRequest"/>, streams stdin/stdout/stderr on the stream's channels and takes the
/// guest protocol's <see cref="ExecControl"/> messages (resize, signal, cancel) as they come.
/// </summary>
public sealed record ControlRequest
{
    public const string ExecOp = "exec";
    public const string Allow = "allow";
    public const string Disallow = "disallow";
    public const string Kill = "kill";
    public const string PortConnect = "port_connect";

    public required string Op { get; init; }

    /// <summary>
    /// exec: the command, as the guest takes it, except that its environment is what the client
    /// sets (bare <c>KEY</c>s already resolved on the client's side), laid by the owner over the
    /// image's, and a null working directory or user means the image's.
    /// </summary>
    public ExecRequest? Exec { get; init; }

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

    /// <summary>exec: the guest's time from spawn to exit.</summary>
    public long? DurationMs { get; init; }

    /// <summary>exec that could not run: the guest's machine-readable cause (<see cref="GuestErrorCodes"/> or an errno name).</summary>
    public string? ErrorCode { get; init; }

    /// <summary>kill: the owner process goes on once the sandbox stopped (an rpc server); wait for the state record, not for it to exit.</summary>
    public bool? OwnerStays { get; init; }

    /// <summary>allow / disallow: the allow-list after the change.</summary>
    public IReadOnlyList<string>? AllowList { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ExecRequest))]
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
