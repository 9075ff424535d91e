namespace Matchlock.Protocol.Framing;

/// <summary>What a frame carries. Values are part of the wire format: never renumber.</summary>
public enum FrameType : byte
{
    /// <summary>Guest to host, stream 0, once: the guest is up and serving. Payload: <c>GuestHello</c> JSON.</summary>
    Hello = 0,

    /// <summary>Opens a stream. Payload: the request JSON. Host-opened ids are odd, guest-opened even.</summary>
    Open = 1,

    /// <summary>Bytes on one channel of a stream. Consumes the receiver's credit for that channel.</summary>
    Data = 2,

    /// <summary>End of one channel. Explicit, because closing the transport loses data in flight (docs/PLATFORM.md "virtio-serial channel").</summary>
    Eof = 3,

    /// <summary>Receiver grants the sender more bytes on a channel. Payload: u32 LE byte count.</summary>
    Credit = 4,

    /// <summary>An out-of-band control message on an open stream (signal, resize, cancel). Payload: JSON.</summary>
    Control = 5,

    /// <summary>The final answer of a stream. After it the sender sends nothing more on the stream.</summary>
    Reply = 6,

    /// <summary>Abort the stream. Payload: UTF-8 reason.</summary>
    Reset = 7,
}
