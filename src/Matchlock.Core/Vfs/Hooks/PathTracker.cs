using System.Text;

namespace Matchlock.Core.Vfs.Hooks;

/// <summary>
/// The guest path of every node the guest's kernel holds, for hook rules and events: each node
/// handed out is remembered under the name it was handed out by (its parent and name), with the
/// kernel's lookup count, so it is forgotten with the kernel's FORGET; renames move names and
/// removals drop them. A node with several names (hard links) is known by the last one used.
/// The guest never sends a path: this is the host's own bookkeeping of names it answered.
/// </summary>
internal sealed class PathTracker(string mountPoint)
{
    // Guards both maps.
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Named> _nodes = [];
    private readonly Dictionary<(ulong Parent, string Name), ulong> _byName = [];

    /// <summary>Nodes with a known name (the root excluded); for tests.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _nodes.Count;
            }
        }
    }

    /// <summary>One lookup of <paramref name="node"/> under <paramref name="parent"/>/<paramref name="name"/>.</summary>
    public void Added(ulong parent, ReadOnlySpan<byte> name, ulong node)
    {
        if (node == IVfsProvider.RootId)
        {
            return;
        }

        var text = Decode(name);
        lock (_lock)
        {
            if (_nodes.TryGetValue(node, out var known))
            {
                known.Lookups++;
                if (known.Parent != parent || known.Name != text)
                {
                    _byName.Remove((known.Parent, known.Name));
                    known.Parent = parent;
                    known.Name = text;
                }
            }
            else
            {
                _nodes[node] = new Named(parent, text) { Lookups = 1 };
            }

            _byName[(parent, text)] = node;
        }
    }

    /// <summary>The kernel gave back lookups; at zero the node is forgotten.</summary>
    public void Forget(ulong node, ulong lookups)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node, out var known))
            {
                return;
            }

            known.Lookups = lookups >= known.Lookups ? 0 : known.Lookups - lookups;
            if (known.Lookups == 0)
            {
                _nodes.Remove(node);
                if (_byName.TryGetValue((known.Parent, known.Name), out var holder) && holder == node)
                {
                    _byName.Remove((known.Parent, known.Name));
                }
            }
        }
    }

    /// <summary>A name was removed (unlink, rmdir): the node keeps its last path until forgotten.</summary>
    public void Removed(ulong parent, ReadOnlySpan<byte> name)
    {
        lock (_lock)
        {
            _byName.Remove((parent, Decode(name)));
        }
    }

    /// <summary>A rename happened: the moved node takes its new name; with exchange both swap.</summary>
    public void Renamed(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, bool exchange)
    {
        var from = (parent, Decode(name));
        var to = (newParent, Decode(newName));
        lock (_lock)
        {
            _byName.Remove(from, out var moved);
            _byName.Remove(to, out var replaced);
            if (moved != 0 && _nodes.TryGetValue(moved, out var m))
            {
                (m.Parent, m.Name) = to;
                _byName[to] = moved;
            }

            if (exchange && replaced != 0 && _nodes.TryGetValue(replaced, out var r))
            {
                (r.Parent, r.Name) = from;
                _byName[from] = replaced;
            }
        }
    }

    /// <summary>Whether <paramref name="name"/> in <paramref name="parent"/> is a name the kernel holds.</summary>
    public bool Knows(ulong parent, ReadOnlySpan<byte> name)
    {
        var key = (parent, Decode(name));
        lock (_lock)
        {
            return _byName.ContainsKey(key);
        }
    }

    /// <summary>The guest path of a node, or null when it is not known (never named to the kernel).</summary>
    public string? PathOf(ulong node)
    {
        var parts = new List<string>();
        lock (_lock)
        {
            // Bounded: a parent chain longer than any real tree means a loop in the bookkeeping.
            for (var steps = 0; node != IVfsProvider.RootId; steps++)
            {
                if (steps > 4096 || !_nodes.TryGetValue(node, out var known))
                {
                    return null;
                }

                parts.Add(known.Name);
                node = known.Parent;
            }
        }

        var sb = new StringBuilder(mountPoint.TrimEnd('/'));
        for (var i = parts.Count - 1; i >= 0; i--)
        {
            sb.Append('/').Append(parts[i]);
        }

        return sb.Length == 0 ? "/" : sb.ToString();
    }

    /// <summary>The guest path of <paramref name="name"/> in directory <paramref name="parent"/>.</summary>
    public string? PathOf(ulong parent, ReadOnlySpan<byte> name) =>
        PathOf(parent) is { } dir ? (dir == "/" ? "/" : dir + "/") + Decode(name) : null;

    private static string Decode(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);

    private sealed class Named(ulong parent, string name)
    {
        public ulong Parent { get; set; } = parent;

        public string Name { get; set; } = name;

        public ulong Lookups { get; set; }
    }
}
