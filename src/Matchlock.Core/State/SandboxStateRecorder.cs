using Matchlock.Core.Network.Plumbing;
using Microsoft.Data.Sqlite;

namespace Matchlock.Core.State;

/// <summary>
/// What a <see cref="Sandboxes.Sandbox"/> writes to the state database during its life: the
/// registration and resources while it starts (failures there fail the start: a VM nobody can
/// find is a VM nobody reconciles), then its transitions. Transitions written while stopping
/// never throw: if one is lost the record stays live-looking, <c>ls</c> shows it crashed once the
/// owner is gone, and <c>prune</c> reconciles it.
/// </summary>
internal sealed class SandboxStateRecorder : IDisposable
{
    private readonly VmStateStore _store;
    private readonly string _id;

    private SandboxStateRecorder(VmStateStore store, string id)
    {
        _store = store;
        _id = id;
    }

    /// <summary>Registers the VM in <see cref="VmStatus.Creating"/>; null when <paramref name="path"/> is null (state not kept).</summary>
    public static SandboxStateRecorder? Register(string? path, VmRegistration vm)
    {
        if (path is null)
        {
            return null;
        }

        var store = VmStateStore.Open(path);
        try
        {
            store.Register(vm);
            return new SandboxStateRecorder(store, vm.Id);
        }
        catch (SqliteException ex)
        {
            store.Dispose();
            throw new VmStateException($"cannot record {vm.Id} in the VM state database {path}: {ex.Message}", ex);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Forgets VMs the stale-VM sweep just removed (directory and VMM gone), unless their network
    /// namespace is still there: then the record is what <c>prune</c> needs to find it.
    /// </summary>
    public static void ForgetSwept(string? path, IReadOnlyList<string> swept)
    {
        if (path is null || swept.Count == 0)
        {
            return;
        }

        using var store = VmStateStore.Open(path);
        foreach (var id in swept)
        {
            if (File.Exists(Path.Combine(NetworkNamespace.NetnsDir, NetworkNamespace.NamePrefix + id)) || store.Get(id) is not { } vm)
            {
                continue;
            }

            store.Forget(vm.Id, "swept: its owner was gone");
        }
    }

    public void AddResource(VmResourceKind kind, string value) => _store.AddResource(_id, kind, value);

    public void Running() => _store.Transition(_id, VmStatus.Running);

    public void Failed(string reason) => TryTransition(VmStatus.Failed, reason);

    public void Stopping() => TryTransition(VmStatus.Stopping, null);

    public void Stopped() => TryTransition(VmStatus.Stopped, null);

    /// <summary>
    /// After a <c>--rm</c> run or a failed start: forgets the VM when everything it held is gone
    /// (its directory, its network namespace); otherwise the record stays for <c>prune</c>.
    /// </summary>
    public void ForgetIfReleased(string vmDir)
    {
        if (Directory.Exists(vmDir) || File.Exists(Path.Combine(NetworkNamespace.NetnsDir, NetworkNamespace.NamePrefix + _id)))
        {
            return;
        }

        try
        {
            _store.Forget(_id);
        }
        catch (Exception ex) when (ex is VmStateException or SqliteException)
        {
            // See the class remarks: the record stays, shows as crashed, and prune reconciles it.
        }
    }

    public void Dispose() => _store.Dispose();

    private bool TryTransition(VmStatus to, string? reason)
    {
        try
        {
            _store.Transition(_id, to, reason);
            return true;
        }
        catch (Exception ex) when (ex is VmStateException or SqliteException)
        {
            // See the class remarks: a lost transition shows as crashed and is reconciled by prune.
            return false;
        }
    }
}
