using System.Diagnostics;
using System.Globalization;
using Matchlock.Core.Interop;
using Matchlock.Core.Network.Plumbing;

namespace Matchlock.Core.State;

/// <summary>What <see cref="VmReconciler.RemoveAsync"/> did: removed, or what is still held.</summary>
/// <param name="Leftovers">Resources that could not be released; empty when the record was deleted.</param>
public sealed record VmRemoval(string Id, IReadOnlyList<string> Leftovers)
{
    public bool Removed => Leftovers.Count == 0;
}

/// <summary>
/// Releases what a VM whose owner is gone still holds (docs/ARCHITECTURE.md D9, <c>rm</c>/<c>prune</c>), in
/// dependency order: the VMM (it keeps the namespace and disks in use), the network namespace,
/// the files; then the record. A record is deleted only when everything is released, so a failed
/// release can be retried (as root, say) and is never forgotten.
/// </summary>
public static class VmReconciler
{
    /// <summary>Releases and forgets one VM; refuses a VM whose owner still runs.</summary>
    /// <exception cref="VmStateException">Unknown id, or its owner is alive.</exception>
    public static async Task<VmRemoval> RemoveAsync(VmStateStore store, string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var vm = store.GetRequired(id);
        if (vm.Status.NeedsOwner())
        {
            throw new VmStateException($"{id} is {vm.Status.Name()} (owner pid {vm.OwnerPid}); stop it first (`matchlock kill {id}`, Ctrl-C its `matchlock run`, or kill {vm.OwnerPid})");
        }

        var leftovers = await ReleaseResourcesAsync(store, vm, cancellationToken);
        if (leftovers.Count == 0 && DeleteDirectory(vm.VmDir) is { } dirLeft)
        {
            leftovers.Add(dirLeft);
        }

        if (leftovers.Count > 0)
        {
            return new VmRemoval(id, leftovers);
        }

        store.Forget(id);
        return new VmRemoval(id, []);
    }

    /// <summary>
    /// <c>gc</c>: releases what a VM whose owner is gone still holds (VMM, network namespace,
    /// disks, sockets) and records it <see cref="VmStatus.Cleaned"/>, keeping its record and its
    /// directory's logs for <c>inspect</c>/<c>log</c> until <c>rm</c>. With
    /// <paramref name="forceRunning"/> a VM whose owner still runs is reclaimed too: the owner
    /// (checked by PID and start time) is killed first — for owners that hang.
    /// </summary>
    /// <exception cref="VmStateException">Unknown id, or running without <paramref name="forceRunning"/>.</exception>
    public static async Task<VmRemoval> CollectAsync(VmStateStore store, string id, bool forceRunning, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var vm = store.GetRequired(id);
        if (vm.Status.NeedsOwner())
        {
            if (!forceRunning)
            {
                throw new VmStateException($"{id} is {vm.Status.Name()} (owner pid {vm.OwnerPid}); gc leaves live VMs alone: stop it with `matchlock kill {id}`, or add --force-running to kill its owner and reclaim what it holds");
            }

            if (await KillOwnerAsync(store, vm) is { } ownerLeft)
            {
                return new VmRemoval(id, [ownerLeft]);
            }
        }

        var leftovers = await ReleaseResourcesAsync(store, vm, cancellationToken);
        if (leftovers.Count == 0 && vm.RecordedStatus != VmStatus.Cleaned)
        {
            store.Transition(id, VmStatus.Cleaned, vm.Status == VmStatus.Crashed || forceRunning ? $"reclaimed by gc (was {vm.Status.Name()})" : null);
        }

        return new VmRemoval(id, leftovers);
    }

    /// <summary>
    /// What a dead <c>--rm</c> run left without a record to reconcile it by: VM directories whose
    /// owner is gone, and <c>matchlock-*</c> network namespaces with no process and no live VM.
    /// Returns the ids swept. Every <c>run</c> does this before it boots; <c>gc</c> does it on demand.
    /// </summary>
    public static async Task<IReadOnlyList<string>> SweepOrphansAsync(string vmsDir, string? statePath, CancellationToken cancellationToken)
    {
        var swept = StaleVmSweeper.Sweep(vmsDir);
        var networks = await StaleVmSweeper.SweepNetworksAsync(vmsDir, cancellationToken, swept);
        SandboxStateRecorder.ForgetSwept(statePath, swept);
        return [.. swept.Concat(networks).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>SIGKILL to a live owner (its QEMU follows through the parent-death signal); null once it is gone.</summary>
    private static async Task<string?> KillOwnerAsync(VmStateStore store, VmRecord vm)
    {
        try
        {
            using var owner = Process.GetProcessById(vm.OwnerPid);
            if (store.IsOwnerAlive(vm))
            {
                owner.Kill();
            }
        }
        catch (ArgumentException)
        {
            return null; // already gone
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            return $"owner pid {vm.OwnerPid} (cannot kill it: {ex.Message})";
        }

        for (var waited = 0; store.IsOwnerAlive(vm) && waited < 5000; waited += 50)
        {
            await Task.Delay(50);
        }

        return store.IsOwnerAlive(vm) ? $"owner pid {vm.OwnerPid} (still running 5 s after SIGKILL)" : null;
    }

    /// <summary>VMM, then the namespace and the files it kept busy; what could not be released.</summary>
    private static async Task<List<string>> ReleaseResourcesAsync(VmStateStore store, VmRecord vm, CancellationToken cancellationToken)
    {
        var id = vm.Id;
        var leftovers = new List<string>();
        var resources = store.Resources(id);
        foreach (var r in resources.Where(r => r.Kind == VmResourceKind.QemuPid))
        {
            if (KillVmm(r.Value, id) is { } left)
            {
                leftovers.Add(left);
            }
        }

        // A VMM still running keeps the namespace and the disks busy: release nothing more.
        if (leftovers.Count > 0)
        {
            return leftovers;
        }

        foreach (var r in resources.Where(r => r.Kind == VmResourceKind.Netns))
        {
            if (await RemoveNamespaceAsync(r.Value, id, cancellationToken) is { } left)
            {
                leftovers.Add(left);
            }
        }

        foreach (var r in resources.Where(r => r.Kind is VmResourceKind.Disk or VmResourceKind.Socket))
        {
            if (DeleteFile(r.Value) is { } left)
            {
                leftovers.Add(left);
            }
        }

        return leftovers;
    }

    /// <summary>Kills the recorded VMM only when its command line names this VM (a PID may have been reused).</summary>
    private static string? KillVmm(string pidText, string id)
    {
        if (!int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return null;
        }

        string cmdline;
        try
        {
            cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // gone
        }

        if (cmdline.Length == 0)
        {
            // No command line: the process is exiting (its memory is gone, its namespaces not
            // yet), e.g. QEMU following its SIGKILLed owner. Let it finish before the namespace goes.
            return WaitUntilGone(pid) ? null : $"QEMU pid {pid} (still exiting after 5 s)";
        }

        if (!cmdline.Contains(id, StringComparison.Ordinal))
        {
            return null; // the PID now belongs to someone else
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
            if (process.WaitForExit(5000))
            {
                return null;
            }
        }
        catch (ArgumentException)
        {
            return null; // exited meanwhile
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception or UnauthorizedAccessException)
        {
            return $"QEMU pid {pid} (cannot kill it: {ex.Message})";
        }

        return $"QEMU pid {pid} (still running 5 s after SIGKILL)";
    }

    private static bool WaitUntilGone(int pid)
    {
        for (var waited = 0; waited < 5000; waited += 20)
        {
            if (OwnerNative.ProcessStartTime(pid) is null)
            {
                return true;
            }

            Thread.Sleep(20);
        }

        return false;
    }

    private static async Task<string?> RemoveNamespaceAsync(string name, string id, CancellationToken cancellationToken)
    {
        var path = Path.Combine(NetworkNamespace.NetnsDir, name);

        // The sweep removes only namespaces with no process inside, and only this VM's. A process
        // that is still leaving (a VMM dying with its owner) gets a moment before that counts.
        var vmId = name.StartsWith(NetworkNamespace.NamePrefix, StringComparison.Ordinal) ? name[NetworkNamespace.NamePrefix.Length..] : name;
        for (var attempt = 0; File.Exists(path) && attempt < 15; attempt++)
        {
            if (attempt > 0)
            {
                await Task.Delay(200, cancellationToken);
            }

            await NetworkNamespace.SweepAsync(other => other != vmId || vmId != id, cancellationToken);
        }

        return File.Exists(path) ? $"network namespace {name} (a process is still inside, or removing it needs root: `sudo ip netns del {name}`)" : null;
    }

    private static string? DeleteFile(string path)
    {
        try
        {
            File.Delete(path);
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"{path} ({ex.Message})";
        }
    }

    private static string? DeleteDirectory(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
            {
                Interop.HostMounts.UnmountAllUnder(dir); // a VFS overlay view: never delete through it
                Directory.Delete(dir, recursive: true);
            }

            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A concurrent removal (another `rm`/`prune`, the owner's own clean-up) may delete the
            // tree under us: what matters is that it is gone, not who removed it.
            return Directory.Exists(dir) ? $"{dir} ({ex.Message})" : null;
        }
    }
}
