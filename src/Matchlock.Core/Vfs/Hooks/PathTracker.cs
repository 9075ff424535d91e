using System.Text;

namespace Matchlock.Core.Vfs.Hooks;

/// <summary>
/// The guest paths of every node the guest's kernel holds, for hook rules and events: each node
/// handed out is remembered under every name it was handed out by (parent and name), with the
/// kernel's lookup count, so it is forgotten with the kernel's FORGET; renames move names and
/// removals drop them. A file with several names (hard links) has all of them, and a rule that
/// protects any of its paths protects the file whichever name the guest uses
/// (<see cref="PathsOf"/>); events name the most recent one (<see cref="PathOf(ulong)"/>). The
/// guest never sends a path: this is the host's own bookkeeping of names it answered.
/// </summary>
/// <param name="mountPoint">The guest path of the mount's root.</param>
/// <param name="rootAlias">
/// A single-file mount (docs/VFS.md "Single files"): the host name of the one file in the root and
/// the guest path it is bound at, so rules and events name the file where the guest sees it.
/// </param>
internal sealed class PathTracker(string mountPoint, (string HostName, string GuestPath)? rootAlias = null)
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

        var key = (parent, Decode(name));
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node, out var known))
            {
                known = new Named();
                _nodes[node] = known;
            }

            known.Lookups++;
            if (_byName.TryGetValue(key, out var previous) && previous != node && _nodes.TryGetValue(previous, out var replaced))
            {
                replaced.Names.Remove(key); // the name now means another node (changed behind our back)
            }

            known.Names.Remove(key);
            known.Names.Insert(0, key); // the most recent name is the one events use
            _byName[key] = node;
        }
    }

    /// <summary>The kernel gave back lookups; at zero the node is forgotten with all its names.</summary>
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
                foreach (var key in known.Names)
                {
                    if (_byName.TryGetValue(key, out var holder) && holder == node)
                    {
                        _byName.Remove(key);
                    }
                }
            }
        }
    }

    /// <summary>A name was removed (unlink, rmdir): an open file keeps its last path for events until forgotten.</summary>
    public void Removed(ulong parent, ReadOnlySpan<byte> name)
    {
        var key = (parent, Decode(name));
        lock (_lock)
        {
            if (_byName.Remove(key, out var node) && _nodes.TryGetValue(node, out var known) && known.Names.Count > 1)
            {
                known.Names.Remove(key);
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

    /// <summary>A rename happened: the moved node takes its new name; with exchange both swap.</summary>
    public void Renamed(ulong parent, ReadOnlySpan<byte> name, ulong newParent, ReadOnlySpan<byte> newName, bool exchange)
    {
        var from = (parent, Decode(name));
        var to = (newParent, Decode(newName));
        lock (_lock)
        {
            _byName.Remove(from, out var moved);
            _byName.Remove(to, out var replaced);
            if (replaced != 0 && _nodes.TryGetValue(replaced, out var r))
            {
                Rename(r, to, exchange ? from : null);
                if (exchange)
                {
                    _byName[from] = replaced;
                }
            }

            if (moved != 0 && _nodes.TryGetValue(moved, out var m))
            {
                Rename(m, from, to);
                _byName[to] = moved;
            }
        }
    }

    /// <summary>The most recent guest path of a node, or null when it is not known (never named to the kernel).</summary>
    public string? PathOf(ulong node)
    {
        lock (_lock)
        {
            return node == IVfsProvider.RootId ? Root : _nodes.TryGetValue(node, out var known) && known.Names.Count > 0 ? Join(known.Names[0]) : null;
        }
    }

    /// <summary>Every known guest path of a node (several for a hard-linked file); empty when none is known.</summary>
    public IReadOnlyList<string> PathsOf(ulong node)
    {
        lock (_lock)
        {
            if (node == IVfsProvider.RootId)
            {
                return [Root];
            }

            if (!_nodes.TryGetValue(node, out var known))
            {
                return [];
            }

            var paths = new List<string>(known.Names.Count);
            foreach (var key in known.Names)
            {
                if (Join(key) is { } path)
                {
                    paths.Add(path);
                }
            }

            return paths;
        }
    }

    /// <summary>The guest path of <paramref name="name"/> in directory <paramref name="parent"/>.</summary>
    public string? PathOf(ulong parent, ReadOnlySpan<byte> name) =>
        PathOf(parent) is { } dir ? (dir == "/" ? "/" : dir + "/") + Decode(name) : null;

    private string Root => mountPoint.Length == 0 ? "/" : mountPoint;

    private static void Rename(Named node, (ulong, string) from, (ulong, string)? to)
    {
        var at = node.Names.IndexOf(from);
        if (at >= 0)
        {
            node.Names.RemoveAt(at);
        }

        if (to is { } target)
        {
            node.Names.Insert(0, target);
        }
    }

    /// <summary>The path of one name: its directory's chain of (single) names up to the root. Caller holds the lock.</summary>
    private string? Join((ulong Parent, string Name) key)
    {
        if (rootAlias is { } alias && key.Parent == IVfsProvider.RootId && key.Name == alias.HostName)
        {
            return alias.GuestPath;
        }

        var parts = new List<string> { key.Name };
        var node = key.Parent;

        // Bounded: a parent chain longer than any real tree means a loop in the bookkeeping.
        for (var steps = 0; node != IVfsProvider.RootId; steps++)
        {
            if (steps > 4096 || !_nodes.TryGetValue(node, out var dir) || dir.Names.Count == 0)
            {
                return null;
            }

            parts.Add(dir.Names[0].Name);
            node = dir.Names[0].Parent;
        }

        var sb = new StringBuilder(mountPoint.TrimEnd('/'));
        for (var i = parts.Count - 1; i >= 0; i--)
        {
            sb.Append('/').Append(parts[i]);
        }

        return sb.ToString();
    }

    private static string Decode(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);

    private sealed class Named
    {
        /// <summary>The node's names, most recent first; a removed node keeps its last one.</summary>
        public List<(ulong Parent, string Name)> Names { get; } = [];

        public ulong Lookups { get; set; }
    }
}
