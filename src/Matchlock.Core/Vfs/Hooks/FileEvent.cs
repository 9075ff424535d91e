using System.Text.Json;
using Matchlock.Core.Events;

namespace Matchlock.Core.Vfs.Hooks;

/// <summary>
/// One operation on a VFS mount (docs/VFS.md "Hooks and events"): the rpc's <c>event.file</c>
/// (<c>op, path, size, mode, uid, gid</c>) and a <c>{"type":"file"}</c> line in <c>events.jsonl</c>.
/// <see cref="Size"/> is the bytes read or written for read and write, else the file's size;
/// <see cref="Mode"/> the permission bits; <see cref="Uid"/>/<see cref="Gid"/> the file's owner as
/// the guest sees it, or the caller's when the file is gone (remove, rename's old name).
/// </summary>
public sealed record FileEvent : LoggedEvent
{
    public override string Type => "file";

    public required string Op { get; init; }

    public required string Path { get; init; }

    /// <summary>Rename and link: the new name.</summary>
    public string? NewPath { get; init; }

    public long Size { get; init; }

    public uint Mode { get; init; }

    public uint Uid { get; init; }

    public uint Gid { get; init; }

    /// <summary>Set when a rule or hook refused the operation: which one, and why.</summary>
    public string? BlockedBy { get; init; }

    internal override void WriteJson(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("type", Type);
        writer.WriteString("time", Time);
        writer.WriteString("op", Op);
        writer.WriteString("path", Path);
        if (NewPath is not null)
        {
            writer.WriteString("new_path", NewPath);
        }

        writer.WriteNumber("size", Size);
        writer.WriteNumber("mode", Mode);
        writer.WriteNumber("uid", Uid);
        writer.WriteNumber("gid", Gid);
        if (BlockedBy is not null)
        {
            writer.WriteBoolean("blocked", true);
            writer.WriteString("blocked_by", BlockedBy);
        }

        writer.WriteEndObject();
    }
}
