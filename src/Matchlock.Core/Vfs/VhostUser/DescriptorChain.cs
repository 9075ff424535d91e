namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>
/// One request as the guest laid it out: a validated descriptor chain, device-readable segments
/// first, then device-writable ones (docs/VFS.md "vhost-user transport"). The pointers are into
/// guest memory that <see cref="GuestMemory"/> keeps mapped while the chain's lease is held; the
/// guest can still change the bytes at any time, so they are copied once and then parsed.
/// </summary>
internal sealed unsafe class DescriptorChain
{
    private readonly List<Segment> _readable = [];
    private readonly List<Segment> _writable = [];

    public DescriptorChain(ushort head) => Head = head;

    /// <summary>The head descriptor's index: what goes back in the used ring.</summary>
    public ushort Head { get; }

    public int ReadableLength { get; private set; }

    public long WritableLength { get; private set; }

    public int ReadableCount => _readable.Count;

    public int WritableCount => _writable.Count;

    internal void AddReadable(byte* data, uint length)
    {
        _readable.Add(new Segment(data, length));
        ReadableLength += (int)length;
    }

    internal void AddWritable(byte* data, uint length)
    {
        _writable.Add(new Segment(data, length));
        WritableLength += length;
    }

    /// <summary>Copies the readable part into <paramref name="into"/> (exactly <see cref="ReadableLength"/> bytes).</summary>
    public void Gather(Span<byte> into)
    {
        var at = 0;
        foreach (var s in _readable)
        {
            new ReadOnlySpan<byte>(s.Data, (int)s.Length).CopyTo(into[at..]);
            at += (int)s.Length;
        }
    }

    /// <summary>Copies <paramref name="reply"/> into the writable part, in order; the bytes written (all of them: the caller checked the room).</summary>
    public int Scatter(ReadOnlySpan<byte> reply)
    {
        var at = 0;
        foreach (var s in _writable)
        {
            if (at == reply.Length)
            {
                break;
            }

            var n = (int)Math.Min(s.Length, (uint)(reply.Length - at));
            reply.Slice(at, n).CopyTo(new Span<byte>(s.Data, n));
            at += n;
        }

        return at;
    }

    private readonly struct Segment(byte* data, uint length)
    {
        public byte* Data { get; } = data;

        public uint Length { get; } = length;
    }
}
