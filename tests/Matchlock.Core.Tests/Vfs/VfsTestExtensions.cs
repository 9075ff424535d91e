using System.Text;
using Matchlock.Core.Vfs;

namespace Matchlock.Core.Tests.Vfs;

/// <summary>String-named shorthands for the byte-named provider operations.</summary>
internal static class VfsTestExtensions
{
    public const ulong Root = IVfsProvider.RootId;

    public static readonly VfsCaller Guest = new(1000, 1000);

    public static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    public static VfsResult<VfsEntry> Lookup(this IVfsProvider p, ulong parent, string name) => p.Lookup(parent, B(name));

    public static VfsResult<VfsEntry> Mkdir(this IVfsProvider p, ulong parent, string name, uint mode = 0x1ED) =>
        p.Mkdir(parent, B(name), mode, Guest);

    public static VfsResult<VfsCreated> Create(this IVfsProvider p, ulong parent, string name, uint mode = 0x1A4, int flags = OpenFlags.ReadWrite) =>
        p.Create(parent, B(name), VfsMode.Regular | mode, flags, Guest);

    public static Errno Unlink(this IVfsProvider p, ulong parent, string name) => p.Unlink(parent, B(name));

    public static Errno Rmdir(this IVfsProvider p, ulong parent, string name) => p.Rmdir(parent, B(name));

    public static Errno Rename(this IVfsProvider p, ulong parent, string name, ulong newParent, string newName, VfsRenameFlags flags = VfsRenameFlags.None) =>
        p.Rename(parent, B(name), newParent, B(newName), flags);

    public static VfsResult<VfsEntry> Symlink(this IVfsProvider p, ulong parent, string name, string target) =>
        p.Symlink(parent, B(name), B(target), Guest);

    public static VfsResult<VfsEntry> Link(this IVfsProvider p, ulong node, ulong newParent, string name) => p.Link(node, newParent, B(name));

    /// <summary>Creates a file holding the text and closes it; returns its node id.</summary>
    public static ulong WriteFile(this IVfsProvider p, ulong parent, string name, string text)
    {
        var created = p.Create(parent, name).Value;
        Assert.Equal(text.Length, p.Write(created.Entry.NodeId, created.Handle, 0, B(text)).Value);
        Assert.Equal(Errno.None, p.Release(created.Entry.NodeId, created.Handle));
        return created.Entry.NodeId;
    }

    public static string ReadAll(this IVfsProvider p, ulong node)
    {
        var handle = p.Open(node, OpenFlags.ReadOnly).Value;
        var buffer = new byte[1 << 16];
        var n = p.Read(node, handle, 0, buffer).Value;
        Assert.Equal(Errno.None, p.Release(node, handle));
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    /// <summary>The whole directory listing (names other than . and ..), taking every entry.</summary>
    public static List<VfsDirEntry> List(this IVfsProvider p, ulong dir, bool plus = false)
    {
        var handle = p.OpenDir(dir).Value;
        List<VfsDirEntry> entries = [];
        Assert.Equal(Errno.None, p.ReadDir(dir, handle, 0, plus, (in VfsDirEntry e) =>
        {
            entries.Add(e);
            return true;
        }));
        Assert.Equal(Errno.None, p.ReleaseDir(dir, handle));
        return [.. entries.Where(e => e.Name is not [(byte)'.'] and not [(byte)'.', (byte)'.'])];
    }

    public static string NameOf(VfsDirEntry e) => Encoding.UTF8.GetString(e.Name);
}
