using System.Diagnostics;
using Matchlock.Core.State;
using Matchlock.Core.Tests.Images;
using Microsoft.Data.Sqlite;

namespace Matchlock.Core.Tests.State;

/// <summary>The state database on its own: schema, lifecycle rules, crash detection, concurrent writers. No VM.</summary>
public sealed class VmStateStoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    private string DbPath => _dir.Combine("state.db");

    public void Dispose() => _dir.Dispose();

    private static string SelfStart => Interop.OwnerNative.ProcessStartTime(Environment.ProcessId)!;

    private static VmRegistration Vm(string id, int? pid = null, string? start = null) =>
        new(id, "busybox:latest", DateTimeOffset.UtcNow, pid ?? Environment.ProcessId, start ?? SelfStart, id, 1, 512, "/tmp/vms/" + id);

    [Fact]
    public void A_new_database_gets_the_current_schema_version_and_reopens()
    {
        using (var store = VmStateStore.Open(DbPath))
        {
            store.Register(Vm("vm-00000001"));
        }

        Assert.Equal(1L, UserVersion());
        using var again = VmStateStore.Open(DbPath);
        Assert.Equal("vm-00000001", Assert.Single(again.List()).Id);
    }

    [Fact]
    public async Task Processes_opening_a_new_database_at_once_migrate_it_once()
    {
        var opens = Enumerable.Range(0, 6).Select(_ => Task.Run(() => VmStateStore.Open(DbPath).Dispose(), TestContext.Current.CancellationToken));
        await Task.WhenAll(opens);
        Assert.Equal(1L, UserVersion());
    }

    [Fact]
    public void A_database_from_a_newer_matchlock_is_refused_with_a_clear_message()
    {
        VmStateStore.Open(DbPath).Dispose();
        SetUserVersion(99);

        var ex = Assert.Throws<VmStateException>(() => VmStateStore.Open(DbPath));
        Assert.Contains("newer matchlock", ex.Message, StringComparison.Ordinal);
        Assert.Contains("schema 99", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Transitions_follow_the_lifecycle_and_are_logged_in_order()
    {
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-00000002"));
        store.Transition("vm-00000002", VmStatus.Running);
        store.Transition("vm-00000002", VmStatus.Stopping);
        store.Transition("vm-00000002", VmStatus.Stopped);

        Assert.Equal(VmStatus.Stopped, store.Get("vm-00000002")!.Status);
        Assert.Throws<VmStateException>(() => store.Transition("vm-00000002", VmStatus.Running));
        store.Transition("vm-00000002", VmStatus.Cleaned);

        Assert.Equal(
            [VmStatus.Creating, VmStatus.Running, VmStatus.Stopping, VmStatus.Stopped, VmStatus.Cleaned],
            store.History("vm-00000002").Select(e => e.Status));
    }

    [Fact]
    public void A_failure_keeps_its_reason()
    {
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-00000003"));
        store.Transition("vm-00000003", VmStatus.Failed, "the guest did not become ready within 10 s");

        var vm = store.Get("vm-00000003")!;
        Assert.Equal(VmStatus.Failed, vm.Status);
        Assert.Equal("the guest did not become ready within 10 s", vm.Reason);
        Assert.Equal("the guest did not become ready within 10 s", store.History("vm-00000003")[^1].Reason);
    }

    [Fact]
    public void A_running_vm_whose_owner_died_is_crashed()
    {
        // A process that has exited: its PID has no /proc entry (or, if reused, another start time).
        using var gone = Process.Start(new ProcessStartInfo("true"))!;
        var start = Interop.OwnerNative.ProcessStartTime(gone.Id) ?? "1";
        gone.WaitForExit();

        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-00000004", gone.Id, start));
        store.Transition("vm-00000004", VmStatus.Running);
        store.Register(Vm("vm-00000005"));
        store.Transition("vm-00000005", VmStatus.Running);

        var dead = store.Get("vm-00000004")!;
        Assert.Equal(VmStatus.Crashed, dead.Status);
        Assert.Equal(VmStatus.Running, dead.RecordedStatus);
        Assert.Equal(VmStatus.Running, store.Get("vm-00000005")!.Status);
    }

    [Fact]
    public void A_reused_pid_with_another_start_time_is_not_the_owner()
    {
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-00000006", Environment.ProcessId, "1"));
        Assert.Equal(VmStatus.Crashed, store.Get("vm-00000006")!.Status);
    }

    [Fact]
    public void A_stopped_vm_is_never_crashed()
    {
        using var store = VmStateStore.Open(DbPath, _ => null); // every owner dead
        store.Register(Vm("vm-00000007"));
        store.Transition("vm-00000007", VmStatus.Stopped);
        Assert.Equal(VmStatus.Stopped, store.Get("vm-00000007")!.Status);
    }

    [Fact]
    public void Resources_are_recorded_once_and_go_with_the_record()
    {
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-00000008"));
        store.AddResource("vm-00000008", VmResourceKind.Netns, "matchlock-vm-00000008");
        store.AddResource("vm-00000008", VmResourceKind.Netns, "matchlock-vm-00000008");
        store.AddResource("vm-00000008", VmResourceKind.QemuPid, "1234");
        Assert.Equal(2, store.Resources("vm-00000008").Count);

        Assert.Throws<VmStateException>(() => store.Delete("vm-00000008")); // not cleaned yet
        store.Transition("vm-00000008", VmStatus.Cleaned);
        Assert.True(store.Delete("vm-00000008"));
        Assert.Null(store.Get("vm-00000008"));
        Assert.Empty(store.Resources("vm-00000008"));
        Assert.Empty(store.History("vm-00000008"));
    }

    [Fact]
    public void An_unknown_id_is_a_clear_error()
    {
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-00000009"));
        var ex = Assert.Throws<VmStateException>(() => store.Transition("vm-deadbeef", VmStatus.Running));
        Assert.Contains("VM vm-deadbeef not found", ex.Message, StringComparison.Ordinal);
        Assert.Contains("vm-00000009", ex.Message, StringComparison.Ordinal);
        Assert.Throws<VmStateException>(() => store.GetRequired("vm-deadbeef"));
    }

    [Fact]
    public async Task Concurrent_writers_on_separate_connections_lose_nothing()
    {
        VmStateStore.Open(DbPath).Dispose();
        const int Writers = 4;
        const int PerWriter = 25;
        var tasks = Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            using var store = VmStateStore.Open(DbPath);
            for (var i = 0; i < PerWriter; i++)
            {
                var id = $"vm-{w:x4}{i:x4}";
                store.Register(Vm(id));
                store.AddResource(id, VmResourceKind.Disk, "/tmp/" + id);
                store.Transition(id, VmStatus.Running);
                store.Transition(id, VmStatus.Stopping);
                store.Transition(id, VmStatus.Stopped);
            }
        }, TestContext.Current.CancellationToken)).ToArray();
        await Task.WhenAll(tasks);

        using var reader = VmStateStore.Open(DbPath);
        var all = reader.List();
        Assert.Equal(Writers * PerWriter, all.Count);
        Assert.All(all, vm => Assert.Equal(VmStatus.Stopped, vm.Status));
        Assert.All(all, vm => Assert.Equal(4, reader.History(vm.Id).Count));
    }

    [Fact]
    public async Task Removing_a_stopped_vm_deletes_its_files_then_its_record()
    {
        var vmDir = _dir.Combine("vms", "vm-0000000a");
        Directory.CreateDirectory(vmDir);
        await File.WriteAllTextAsync(Path.Combine(vmDir, "upper.ext4"), "disk", TestContext.Current.CancellationToken);
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-0000000a") with { VmDir = vmDir });
        store.AddResource("vm-0000000a", VmResourceKind.Disk, Path.Combine(vmDir, "upper.ext4"));
        store.AddResource("vm-0000000a", VmResourceKind.QemuPid, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)); // not named after the VM: never killed
        store.Transition("vm-0000000a", VmStatus.Stopped);

        var removal = await VmReconciler.RemoveAsync(store, "vm-0000000a", TestContext.Current.CancellationToken);

        Assert.True(removal.Removed, string.Join("; ", removal.Leftovers));
        Assert.False(Directory.Exists(vmDir));
        Assert.Null(store.Get("vm-0000000a"));
    }

    [Fact]
    public async Task A_vm_whose_owner_runs_is_not_removed()
    {
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-0000000b"));
        store.Transition("vm-0000000b", VmStatus.Running);
        var ex = await Assert.ThrowsAsync<VmStateException>(() => VmReconciler.RemoveAsync(store, "vm-0000000b", TestContext.Current.CancellationToken));
        Assert.Contains("running", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(store.Get("vm-0000000b"));
    }

    [Fact]
    public async Task Two_removals_of_the_same_vm_at_once_never_fail_halfway_and_it_is_gone()
    {
        var vmDir = _dir.Combine("vms", "vm-0000000c");
        Directory.CreateDirectory(vmDir);
        using (var setup = VmStateStore.Open(DbPath))
        {
            setup.Register(Vm("vm-0000000c") with { VmDir = vmDir });
            setup.Transition("vm-0000000c", VmStatus.Stopped);
        }

        var removals = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            using var store = VmStateStore.Open(DbPath);
            try
            {
                return await VmReconciler.RemoveAsync(store, "vm-0000000c", TestContext.Current.CancellationToken);
            }
            catch (VmStateException ex) when (ex.Message.Contains("not found", StringComparison.Ordinal))
            {
                return null; // the other one had already finished: the same outcome
            }
        }, TestContext.Current.CancellationToken)));

        Assert.Contains(removals, r => r is not null);
        Assert.All(removals.OfType<VmRemoval>(), r => Assert.True(r.Removed, string.Join("; ", r.Leftovers)));
        using var check = VmStateStore.Open(DbPath);
        Assert.Null(check.Get("vm-0000000c"));
    }

    [Fact]
    public void Forget_records_cleaned_then_deletes_and_is_idempotent()
    {
        using var store = VmStateStore.Open(DbPath);
        store.Register(Vm("vm-0000000d"));
        store.Transition("vm-0000000d", VmStatus.Failed, "boom");
        Assert.True(store.Forget("vm-0000000d"));
        Assert.False(store.Forget("vm-0000000d"));
        Assert.Null(store.Get("vm-0000000d"));
    }

    private long UserVersion()
    {
        using var c = new SqliteConnection($"Data Source={DbPath};Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA user_version";
        return (long)cmd.ExecuteScalar()!;
    }

    private void SetUserVersion(int version)
    {
        using var c = new SqliteConnection($"Data Source={DbPath};Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"PRAGMA user_version={version}";
        cmd.ExecuteNonQuery();
    }
}
