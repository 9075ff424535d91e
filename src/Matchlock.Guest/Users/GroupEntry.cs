namespace Matchlock.Guest.Users;

/// <summary>One /etc/group line: name:password:gid:member,member.</summary>
internal sealed record GroupEntry(string Name, uint Gid, IReadOnlyList<string> Members);
