namespace Matchlock.Protocol;

public static class ProtocolInfo
{
    /// <summary>Bumped on any incompatible change to frames or messages.</summary>
    public const int Version = 1;

    /// <summary>Name of the virtio-serial port the guest serves on (docs/CONTRACTS.md).</summary>
    public const string ChannelName = "matchlock";
}
