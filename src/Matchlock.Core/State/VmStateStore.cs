using System.Globalization;
using Matchlock.Core.Interop;
using Matchlock.Core.Sandboxes;
using Microsoft.Data.Sqlite;

namespace Matchlock.Core.State;

/// <summary>
/// The VM state database (<c>MATCHLOCK_HOME/state.db</c>, docs/ARCHITECTURE.md D9): VMs, their append-only
/// lifecycle log and the resources each holds. SQLite in WAL mode; every change is one IMMEDIATE
/// transaction, so CLIs running at once serialise on SQLite's write lock and never see a half
/// change. The schema version is <c>PRAGMA user_version</c>; a newer one is refused.
/// </summary>
public sealed class VmStateStore : IDisposable
{
    public const string FileName = "state.db";

    private readonly SqliteConnection _connection;
    private readonly Func<int, string?> _processStartTime;

    private VmStateStore(SqliteConnection connection, Func<int, string?> processStartTime)
    {
        _connection = connection;
        _processStartTime = processStartTime;
    }

    /// <summary><c>MATCHLOCK_HOME/state.db</c>.</summary>
    public static string DefaultPath => Path.Combine(MatchlockPaths.Home, FileName);

    /// <summary>Opens (creating or migrating) the database.</summary>
    /// <param name="processStartTime">Seam for tests: start time of a PID, null when no such process.</param>
    /// <exception cref="VmStateException">Newer schema, or the file cannot be opened.</exception>
    public static VmStateStore Open(string? path = null, Func<int, string?>? processStartTime = null)
    {
        path ??= DefaultPath;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var connection = SqliteStatements.OpenMigrated(path, Migrations, "the VM state database", (message, inner) => inner is null ? new VmStateException(message) : new VmStateException(message, inner));
        return new VmStateStore(connection, processStartTime ?? OwnerNative.ProcessStartTime);
    }

    // Index = version reached by applying it; append, never edit, so old databases migrate step by step.
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE vms (
            id TEXT PRIMARY KEY,
            image TEXT NOT NULL,
            created TEXT NOT NULL,
            owner_pid INTEGER NOT NULL,
            owner_start TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT,
            hostname TEXT NOT NULL,
            cpus INTEGER NOT NULL,
            memory_mb INTEGER NOT NULL,
            vm_dir TEXT NOT NULL);
        CREATE TABLE lifecycle (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            time TEXT NOT NULL,
            reason TEXT);
        CREATE INDEX lifecycle_vm ON lifecycle(vm_id, seq);
        CREATE TABLE resources (
            vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (vm_id, kind, value));
        """,
    ];

    public void Dispose() => _connection.Dispose();

    /// <summary>Records a new VM in <see cref="VmStatus.Creating"/>.</summary>
    public void Register(VmRegistration vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        using var tx = _connection.BeginTransaction(deferred: false);
        Exec(tx, """
            INSERT INTO vms(id, image, created, owner_pid, owner_start, status, reason, hostname, cpus, memory_mb, vm_dir)
            VALUES ($id, $image, $created, $pid, $start, 'creating', NULL, $host, $cpus, $mem, $dir)
            """,
            ("$id", vm.Id), ("$image", vm.Image), ("$created", FormatTime(vm.Created)), ("$pid", vm.OwnerPid), ("$start", vm.OwnerStartTime),
            ("$host", vm.Hostname), ("$cpus", vm.Cpus), ("$mem", vm.MemoryMb), ("$dir", vm.VmDir));
        AppendLog(tx, vm.Id, VmStatus.Creating, null);
        tx.Commit();
    }

    /// <summary>Moves a VM to <paramref name="to"/> and appends it to the lifecycle log.</summary>
    /// <exception cref="VmStateException">Unknown id, or a transition the lifecycle does not allow.</exception>
    public void Transition(string id, VmStatus to, string? reason = null)
    {
        if (to == VmStatus.Crashed)
        {
            throw new ArgumentException("crashed is derived from the owner's PID, never recorded", nameof(to));
        }

        using var tx = _connection.BeginTransaction(deferred: false);
        var from = RecordedStatus(id, tx) ?? throw UnknownId(id, tx);
        if (!VmStatuses.CanMove(from, to))
        {
            throw new VmStateException($"{id} cannot go from {from.Name()} to {to.Name()}");
        }

        Exec(tx, "UPDATE vms SET status = $s, reason = $r WHERE id = $id", ("$id", id), ("$s", to.Name()), ("$r", reason));
        AppendLog(tx, id, to, reason);
        tx.Commit();
    }

    /// <summary>Records something the VM holds (before acquiring it, so a crash in between is still reconciled).</summary>
    public void AddResource(string id, VmResourceKind kind, string value)
    {
        using var tx = _connection.BeginTransaction(deferred: false);
        _ = RecordedStatus(id, tx) ?? throw UnknownId(id, tx);
        Exec(tx, "INSERT OR IGNORE INTO resources(vm_id, kind, value) VALUES ($id, $k, $v)", ("$id", id), ("$k", KindName(kind)), ("$v", value));
        tx.Commit();
    }

    /// <summary>All VMs, oldest first.</summary>
    public IReadOnlyList<VmRecord> List()
    {
        using var command = Command(SelectVm + " ORDER BY created, id");
        return ReadVms(command);
    }

    /// <summary>One VM, or null when there is no such id.</summary>
    public VmRecord? Get(string id)
    {
        using var command = Command(SelectVm + " WHERE id = $id", null, ("$id", id));
        return ReadVms(command).FirstOrDefault();
    }

    /// <summary>Like <see cref="Get"/>, but an unknown id is a <see cref="VmStateException"/> naming the known ones.</summary>
    public VmRecord GetRequired(string id) => Get(id) ?? throw UnknownId(id);

    /// <summary>The lifecycle log of a VM, oldest first.</summary>
    public IReadOnlyList<VmLifecycleEntry> History(string id)
    {
        using var command = Command("SELECT status, time, reason FROM lifecycle WHERE vm_id = $id ORDER BY seq", null, ("$id", id));
        var entries = new List<VmLifecycleEntry>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            entries.Add(new VmLifecycleEntry(VmStatuses.Parse(reader.GetString(0)), ParseTime(reader.GetString(1)), reader.IsDBNull(2) ? null : reader.GetString(2)));
        }

        return entries;
    }

    public IReadOnlyList<VmResource> Resources(string id)
    {
        using var command = Command("SELECT kind, value FROM resources WHERE vm_id = $id ORDER BY kind, value", null, ("$id", id));
        var resources = new List<VmResource>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            resources.Add(new VmResource(ParseKind(reader.GetString(0)), reader.GetString(1)));
        }

        return resources;
    }

    /// <summary>
    /// Deletes a VM's record with its log and resources. Only for <see cref="VmStatus.Cleaned"/>
    /// VMs: a record is the only way to find what a VM holds, so it goes last.
    /// </summary>
    public bool Delete(string id)
    {
        using var tx = _connection.BeginTransaction(deferred: false);
        var status = RecordedStatus(id, tx);
        if (status is null)
        {
            return false;
        }

        if (status != VmStatus.Cleaned)
        {
            throw new VmStateException($"{id} is {status.Value.Name()}; only a cleaned VM's record may be deleted");
        }

        Exec(tx, "DELETE FROM vms WHERE id = $id", ("$id", id));
        tx.Commit();
        return true;
    }

    /// <summary>
    /// For a VM whose resources are all released: records <see cref="VmStatus.Cleaned"/> and
    /// deletes the record, in one transaction. False when it is already gone (another
    /// <c>prune</c> got there first), which is the same outcome.
    /// </summary>
    public bool Forget(string id, string? reason = null)
    {
        using var tx = _connection.BeginTransaction(deferred: false);
        if (RecordedStatus(id, tx) is not { } status)
        {
            return false;
        }

        if (status != VmStatus.Cleaned)
        {
            Exec(tx, "UPDATE vms SET status = 'cleaned', reason = $r WHERE id = $id", ("$id", id), ("$r", reason));
            AppendLog(tx, id, VmStatus.Cleaned, reason);
        }

        Exec(tx, "DELETE FROM vms WHERE id = $id", ("$id", id));
        tx.Commit();
        return true;
    }

    /// <summary>True when the recorded owner process (PID and start time) still runs.</summary>
    public bool IsOwnerAlive(VmRecord vm) => IsOwnerAlive(vm.OwnerPid, vm.OwnerStartTime);

    private bool IsOwnerAlive(int pid, string startTime) => _processStartTime(pid) is { } start && start == startTime;

    private const string SelectVm = "SELECT id, image, created, owner_pid, owner_start, status, reason, hostname, cpus, memory_mb, vm_dir FROM vms";

    private List<VmRecord> ReadVms(SqliteCommand command)
    {
        var rows = new List<VmRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var pid = reader.GetInt32(3);
            var start = reader.GetString(4);
            var recorded = VmStatuses.Parse(reader.GetString(5));
            var effective = recorded.NeedsOwner() && !IsOwnerAlive(pid, start) ? VmStatus.Crashed : recorded;
            rows.Add(new VmRecord(
                reader.GetString(0), reader.GetString(1), ParseTime(reader.GetString(2)), pid, start, effective, recorded,
                reader.IsDBNull(6) ? null : reader.GetString(6), reader.GetString(7), reader.GetInt32(8), reader.GetInt32(9), reader.GetString(10)));
        }

        return rows;
    }

    private VmStatus? RecordedStatus(string id, SqliteTransaction tx)
    {
        using var command = Command("SELECT status FROM vms WHERE id = $id", tx, ("$id", id));
        return command.ExecuteScalar() is string s ? VmStatuses.Parse(s) : null;
    }

    private void AppendLog(SqliteTransaction tx, string id, VmStatus status, string? reason) =>
        Exec(tx, "INSERT INTO lifecycle(vm_id, status, time, reason) VALUES ($id, $s, $t, $r)",
            ("$id", id), ("$s", status.Name()), ("$t", FormatTime(DateTimeOffset.UtcNow)), ("$r", reason));

    private VmStateException UnknownId(string id, SqliteTransaction? tx = null)
    {
        using var command = Command("SELECT id FROM vms ORDER BY created, id", tx);
        var known = new List<string>();
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                known.Add(reader.GetString(0));
            }
        }

        return new VmStateException(known.Count == 0
            ? $"VM {id} not found (there are none; `matchlock ls` lists them)"
            : $"VM {id} not found (known: {string.Join(", ", known.Take(10))}{(known.Count > 10 ? ", …" : "")})");
    }

    private static string KindName(VmResourceKind kind) => kind switch
    {
        VmResourceKind.Netns => "netns",
        VmResourceKind.Disk => "disk",
        VmResourceKind.Socket => "socket",
        VmResourceKind.QemuPid => "qemu_pid",
        VmResourceKind.AttachedDisk => "attached_disk",
        VmResourceKind.Listener => "listener",
        VmResourceKind.VfsMount => "vfs_mount",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static string ResourceKindName(VmResourceKind kind) => KindName(kind);

    private static VmResourceKind ParseKind(string name) => name switch
    {
        "netns" => VmResourceKind.Netns,
        "disk" => VmResourceKind.Disk,
        "socket" => VmResourceKind.Socket,
        "qemu_pid" => VmResourceKind.QemuPid,
        "attached_disk" => VmResourceKind.AttachedDisk,
        "listener" => VmResourceKind.Listener,
        "vfs_mount" => VmResourceKind.VfsMount,
        _ => throw new VmStateException($"unknown resource kind '{name}' in the state database (written by a newer matchlock?)"),
    };

    private SqliteCommand Command(string sql, SqliteTransaction? tx = null, params (string Name, object? Value)[] parameters) =>
        _connection.Command(sql, tx, parameters);

    private void Exec(SqliteTransaction tx, string sql, params (string Name, object? Value)[] parameters) =>
        _connection.Execute(sql, tx, parameters);

    private static string FormatTime(DateTimeOffset time) => SqliteStatements.FormatTime(time);

    private static DateTimeOffset ParseTime(string text) => SqliteStatements.ParseTime(text);
}
