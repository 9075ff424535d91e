using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Matchlock.Protocol.Framing;

/// <summary>
/// The fixed 10-byte frame header: u32 LE payload length, u32 LE stream id, u8 type, u8 channel.
/// </summary>
public readonly record struct FrameHeader(int PayloadLength, uint StreamId, FrameType Type, byte Channel)
{
    public const int Size = 10;

    /// <summary>Largest payload we accept; protects both ends from a corrupt length field.</summary>
    public const int MaxPayload = 16 * 1024 * 1024;

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt32LittleEndian(destination, PayloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], StreamId);
        destination[8] = (byte)Type;
        destination[9] = Channel;
    }

    /// <summary>
    /// Parses a header. False, with what is wrong, when it breaks the framing rules (a corrupt
    /// length or an unknown type): the link cannot be used any more, which the caller reports.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out FrameHeader header, [NotNullWhen(false)] out string? error)
    {
        header = default;
        var length = BinaryPrimitives.ReadInt32LittleEndian(source);
        if (length < 0 || length > MaxPayload)
        {
            error = $"frame payload length {length} is outside 0..{MaxPayload}; the peer is not speaking this protocol or the link is corrupt";
            return false;
        }

        var type = (FrameType)source[8];
        if (type > FrameType.Reset)
        {
            error = $"unknown frame type {source[8]}";
            return false;
        }

        header = new FrameHeader(length, BinaryPrimitives.ReadUInt32LittleEndian(source[4..]), type, source[9]);
        error = null;
        return true;
    }
}
