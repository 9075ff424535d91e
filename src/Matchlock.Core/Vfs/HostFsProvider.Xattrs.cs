using System.Text;
using static Matchlock.Core.Interop.VfsNative;

namespace Matchlock.Core.Vfs;

/// <summary>
/// Extended attributes. The guest works in the <c>user.*</c> namespace only: a root server that
/// set <c>security.capability</c> or <c>trusted.*</c> on a host file would hand the guest what a
/// setuid bit does. Other namespaces read as absent and cannot be set. The ownership record is
/// the server's: hidden from listings, and neither readable nor writable by the guest.
/// </summary>
internal sealed partial class HostFsProvider
{
    private const string UserPrefix = "user.";

    public VfsResult<byte[]> GetXattr(ulong node, string name)
    {
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        if (!IsGuestName(name) || !n.TakesUserXattrs)
        {
            return Errno.ENODATA;
        }

        var e = GetXattrNode(n.Fd, name, out var value);
        return e == 0 ? value : (Errno)e;
    }

    public Errno SetXattr(ulong node, string name, ReadOnlySpan<byte> value, int flags)
    {
        var check = CheckXattrChange(node, name, out var n);
        return check != Errno.None ? check : (Errno)SetXattrNode(n.Fd, name, value, flags);
    }

    public VfsResult<IReadOnlyList<string>> ListXattr(ulong node)
    {
        if (!_nodes.TryGet(node, out var n))
        {
            return Errno.ENOENT;
        }

        if (!n.TakesUserXattrs)
        {
            return Array.Empty<string>();
        }

        var e = ListXattrNode(n.Fd, out var raw);
        if (e != 0)
        {
            return (Errno)e;
        }

        return Encoding.UTF8.GetString(raw).Split('\0', StringSplitOptions.RemoveEmptyEntries).Where(IsGuestName).ToArray();
    }

    public Errno RemoveXattr(ulong node, string name)
    {
        var check = CheckXattrChange(node, name, out var n);
        return check != Errno.None ? check : (Errno)RemoveXattrNode(n.Fd, name);
    }

    private static bool IsGuestName(string name) =>
        name.StartsWith(UserPrefix, StringComparison.Ordinal) && name != OwnershipXattr.Name;

    private Errno CheckXattrChange(ulong node, string name, out HostNode n)
    {
        if (!_nodes.TryGet(node, out n))
        {
            return Errno.ENOENT;
        }

        if (ReadOnly)
        {
            return Errno.EROFS;
        }

        if (name == OwnershipXattr.Name || !n.TakesUserXattrs)
        {
            return Errno.EPERM;
        }

        return IsGuestName(name) ? Errno.None : Errno.EOPNOTSUPP;
    }
}
