using System.Text.Json;

namespace Matchlock.Protocol.Messages;

/// <summary>Typed (de)serialization of the protocol messages; throws <see cref="MuxProtocolException"/> on garbage.</summary>
public static class ProtocolSerializer
{
    public static byte[] Serialize(GuestRequest value) => JsonSerializer.SerializeToUtf8Bytes(value, ProtocolJsonContext.Default.GuestRequest);

    public static byte[] Serialize(ExecControl value) => JsonSerializer.SerializeToUtf8Bytes(value, ProtocolJsonContext.Default.ExecControl);

    public static byte[] Serialize(GuestReply value) => JsonSerializer.SerializeToUtf8Bytes(value, ProtocolJsonContext.Default.GuestReply);

    public static byte[] Serialize(GuestHello value) => JsonSerializer.SerializeToUtf8Bytes(value, ProtocolJsonContext.Default.GuestHello);

    public static GuestRequest ReadRequest(ReadOnlyMemory<byte> json) => Read(json, static j => JsonSerializer.Deserialize(j.Span, ProtocolJsonContext.Default.GuestRequest));

    public static ExecControl ReadControl(ReadOnlyMemory<byte> json) => Read(json, static j => JsonSerializer.Deserialize(j.Span, ProtocolJsonContext.Default.ExecControl));

    public static GuestReply ReadReply(ReadOnlyMemory<byte> json) => Read(json, static j => JsonSerializer.Deserialize(j.Span, ProtocolJsonContext.Default.GuestReply));

    public static GuestHello ReadHello(ReadOnlyMemory<byte> json) => Read(json, static j => JsonSerializer.Deserialize(j.Span, ProtocolJsonContext.Default.GuestHello));

    private static T Read<T>(ReadOnlyMemory<byte> json, Func<ReadOnlyMemory<byte>, T?> parse)
        where T : class
    {
        try
        {
            return parse(json) ?? throw new MuxProtocolException($"empty {typeof(T).Name} message");
        }
        catch (JsonException ex)
        {
            throw new MuxProtocolException($"malformed {typeof(T).Name} message: {ex.Message}", ex);
        }
        catch (NotSupportedException ex)
        {
            // Unknown "op"/"type" discriminators land here.
            throw new MuxProtocolException($"unsupported {typeof(T).Name} message: {ex.Message}", ex);
        }
    }
}
