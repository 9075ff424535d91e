namespace Matchlock.Core.Vfs.VhostUser;

/// <summary>
/// vhost-user message types we know (QEMU's docs/interop/vhost-user.rst, "Front-end message
/// types"). Only the ones <see cref="VhostUserSession"/> answers are listed with meaning; anything
/// else ends the connection (docs/VFS.md "vhost-user transport").
/// </summary>
internal enum VhostUserRequest : uint
{
    GetFeatures = 1,
    SetFeatures = 2,
    SetOwner = 3,
    ResetOwner = 4,
    SetMemTable = 5,
    SetVringNum = 8,
    SetVringAddr = 9,
    SetVringBase = 10,
    GetVringBase = 11,
    SetVringKick = 12,
    SetVringCall = 13,
    SetVringErr = 14,
    GetProtocolFeatures = 15,
    SetProtocolFeatures = 16,
    GetQueueNum = 17,
    SetVringEnable = 18,
}

/// <summary>The wire constants of vhost-user and of the virtio features we offer.</summary>
internal static class VhostUserConstants
{
    /// <summary>Header: u32 request, u32 flags, u32 payload size.</summary>
    public const int HeaderSize = 12;

    /// <summary>Our payloads are all small (the memory table is 8 + 8 × 32 bytes); anything larger is refused.</summary>
    public const int MaxPayload = 4096;

    public const uint ProtocolVersion = 0x1;
    public const uint VersionMask = 0x3;
    public const uint ReplyFlag = 0x4;
    public const uint NeedReplyFlag = 0x8;

    /// <summary>Bit 8 of SET_VRING_KICK/CALL/ERR's u64: no descriptor came with the message.</summary>
    public const ulong VringNoFd = 0x100;
    public const ulong VringIndexMask = 0xFF;

    public const int MaxRegions = 8;

    public const int FeatureIndirectDesc = 28;
    public const int FeatureProtocolFeatures = 30;
    public const int FeatureVersion1 = 32;

    public const int ProtocolMq = 0;
    public const int ProtocolReplyAck = 3;

    /// <summary>What we offer: virtio 1.x, indirect descriptors, and vhost-user's protocol-feature negotiation.</summary>
    public const ulong OfferedFeatures = (1UL << FeatureVersion1) | (1UL << FeatureProtocolFeatures) | (1UL << FeatureIndirectDesc);

    /// <summary>Several queues (QEMU asks their number) and acknowledged requests.</summary>
    public const ulong OfferedProtocolFeatures = (1UL << ProtocolMq) | (1UL << ProtocolReplyAck);
}
