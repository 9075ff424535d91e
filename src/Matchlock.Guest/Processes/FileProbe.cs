namespace Matchlock.Guest.Processes;

/// <summary>What the resolver needs to know about a path (after following symlinks).</summary>
internal readonly record struct FileProbe(bool IsDirectory, bool IsRegular, uint Mode, uint Uid, uint Gid);
