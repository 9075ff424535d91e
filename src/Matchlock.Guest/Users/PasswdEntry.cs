namespace Matchlock.Guest.Users;

/// <summary>One /etc/passwd line: name:password:uid:gid:gecos:home:shell.</summary>
internal sealed record PasswdEntry(string Name, uint Uid, uint Gid, string Home, string Shell);
