namespace Matchlock.Core.Vfs;

/// <summary>
/// The nodes the guest's kernel knows: node id → node, with the kernel's lookup count. A node is
/// found again by its key (host: device and inode; memory: the tree node itself), so every name
/// of one inode is one node id, as the kernel expects of hard links. Node id 1 is the root, which
/// FORGET never removes. Ids are never reused: a stale id from the guest finds nothing.
/// </summary>
internal sealed class NodeTable<TKey, TNode> : IDisposable
    where TKey : notnull
    where TNode : class
{
    // Guards _byId, _byKey and _nextId.
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, Slot> _byId = [];
    private readonly Dictionary<TKey, ulong> _byKey = [];
    private ulong _nextId = IVfsProvider.RootId + 1;

    public NodeTable(TKey rootKey, TNode root)
    {
        _byId[IVfsProvider.RootId] = new Slot(rootKey, root) { Lookups = 1 };
        _byKey[rootKey] = IVfsProvider.RootId;
    }

    /// <summary>Nodes currently known, the root included.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Count;
            }
        }
    }

    public bool TryGet(ulong id, out TNode node)
    {
        lock (_lock)
        {
            if (_byId.TryGetValue(id, out var slot))
            {
                node = slot.Node;
                return true;
            }
        }

        node = null!;
        return false;
    }

    /// <summary>The lookup count of a node (0 when unknown); for tests and diagnostics.</summary>
    public ulong LookupsOf(ulong id)
    {
        lock (_lock)
        {
            return _byId.TryGetValue(id, out var slot) ? slot.Lookups : 0;
        }
    }

    /// <summary>
    /// Counts one lookup of the node with this key: the known node if there is one (then
    /// <paramref name="candidate"/> is disposed, when disposable), else the candidate under a new id.
    /// </summary>
    public (ulong Id, TNode Node) Acquire(TKey key, TNode candidate)
    {
        lock (_lock)
        {
            if (_byKey.TryGetValue(key, out var id))
            {
                var slot = _byId[id];
                slot.Lookups++;
                if (!ReferenceEquals(slot.Node, candidate))
                {
                    (candidate as IDisposable)?.Dispose();
                }

                return (id, slot.Node);
            }

            id = _nextId++;
            _byId[id] = new Slot(key, candidate) { Lookups = 1 };
            _byKey[key] = id;
            return (id, candidate);
        }
    }

    /// <summary>Takes back lookups (FUSE FORGET); at zero the node leaves the table and is disposed.</summary>
    public void Forget(ulong id, ulong lookups)
    {
        TNode? dropped = null;
        lock (_lock)
        {
            if (id == IVfsProvider.RootId || !_byId.TryGetValue(id, out var slot))
            {
                return;
            }

            slot.Lookups = lookups >= slot.Lookups ? 0 : slot.Lookups - lookups;
            if (slot.Lookups == 0)
            {
                _byId.Remove(id);
                _byKey.Remove(slot.Key);
                dropped = slot.Node;
            }
        }

        (dropped as IDisposable)?.Dispose();
    }

    public void Dispose()
    {
        List<TNode> nodes;
        lock (_lock)
        {
            nodes = [.. _byId.Values.Select(s => s.Node)];
            _byId.Clear();
            _byKey.Clear();
        }

        foreach (var node in nodes)
        {
            (node as IDisposable)?.Dispose();
        }
    }

    private sealed class Slot(TKey key, TNode node)
    {
        public TKey Key { get; } = key;

        public TNode Node { get; } = node;

        public ulong Lookups { get; set; }
    }
}
