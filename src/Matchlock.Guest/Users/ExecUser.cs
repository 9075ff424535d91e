namespace Matchlock.Guest.Users;

/// <summary>Who a command runs as, resolved against the image's passwd and group files.</summary>
internal sealed record ExecUser(uint Uid, uint Gid, IReadOnlyList<uint> SupplementaryGroups, string Home, string? Name)
{
    internal static ExecUser Root { get; } = new(0, 0, [], "/root", "root");

    /// <summary>True when this is exactly what PID 1 already is (root, gid 0, no extra groups),
    /// so no identity switch (and no helper re-exec) is needed.</summary>
    internal bool IsPlainRoot => Uid == 0 && Gid == 0 && SupplementaryGroups.Count == 0;
}
