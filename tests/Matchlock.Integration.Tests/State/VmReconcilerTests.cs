using System.Diagnostics;
using Matchlock.Core;
using Matchlock.Core.Sandboxes;
using Matchlock.Core.State;
using Matchlock.Core.Tests.Images;
using Matchlock.Tests;

namespace Matchlock.Integration.Tests.State;

/// <summary>
/// Reconciliation that cannot finish keeps the record. Needs root and iproute2 (a real network
/// namespace): see <see cref="HostPrerequisites"/>. The namespace has a unique name and is removed afterwards.
/// </summary>
public sealed class VmReconcilerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_namespace_that_cannot_be_removed_keeps_the_record_and_is_named()
    {
        HostPrerequisites.Ensure(HostNeeds.Root | HostNeeds.NetworkTools);

        var ct = TestContext.Current.CancellationToken;
        var id = VmId.New();
        var netns = "matchlock-" + id;
        Assert.Equal(0, await RunAsync(["netns", "add", netns], ct));
        // A process inside: the reconciler must not remove a namespace something still uses.
        using var inside = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", netns, "sleep", "60"]))!;
        try
        {
            await Eventually.Until(async () => (await OutputAsync(["netns", "pids", netns], ct)).Trim().Length > 0,
                TimeSpan.FromSeconds(10), "sleep to run inside the namespace");
            using var store = VmStateStore.Open(_dir.Combine("state.db"));
            store.Register(new VmRegistration(id, "busybox", DateTimeOffset.UtcNow, Environment.ProcessId, "1", id, 1, 512, _dir.Combine("vms", id)));
            store.AddResource(id, VmResourceKind.Netns, netns);

            var removal = await VmReconciler.RemoveAsync(store, id, ct); // owner start time "1": crashed

            Assert.False(removal.Removed);
            Assert.Contains(netns, Assert.Single(removal.Leftovers), StringComparison.Ordinal);
            Assert.Equal(VmStatus.Crashed, store.Get(id)!.Status);
        }
        finally
        {
            inside.Kill();
            await inside.WaitForExitAsync(CancellationToken.None);
            await RunAsync(["netns", "del", netns], CancellationToken.None);
        }
    }

    private static async Task<string> OutputAsync(string[] args, CancellationToken ct)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var stdout = await p.StandardOutput.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return stdout;
    }

    private static async Task<int> RunAsync(string[] args, CancellationToken ct)
    {
        using var p = Process.Start(new ProcessStartInfo("ip", args) { RedirectStandardError = true })!;
        await p.WaitForExitAsync(ct);
        return p.ExitCode;
    }
}
