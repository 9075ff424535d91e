using System.Diagnostics;
using Matchlock.Core.Network.Plumbing;

namespace Matchlock.Integration.Tests.Network.Plumbing;

/// <summary>
/// Stands in for QEMU + guest without a VM: the sandbox's tap is replaced by one end of a veth
/// pair (same name, same gateway address), whose other end is <c>eth0</c> in a second namespace
/// configured like the guest (address, default route via the gateway). Everything the "guest"
/// sends stays inside these two namespaces.
/// </summary>
internal sealed class FakeGuest : IAsyncDisposable
{
    private FakeGuest(string name) => Name = name;

    public string Name { get; }

    public string NamespacePath => "/var/run/netns/" + Name;

    public static async Task<FakeGuest> AttachAsync(NetworkNamespace network)
    {
        var guest = new FakeGuest("mltest-guest-" + Guid.NewGuid().ToString("N")[..8]);
        var o = network.Options;
        var ns = network.NamespaceName;
        await Sh.RunAsync($"ip netns add {guest.Name}");
        try
        {
            await Sh.RunAsync(
                $"ip -n {ns} link del {o.TapName} && " +
                $"ip link add {o.TapName} netns {ns} type veth peer name eth0 netns {guest.Name} && " +
                $"ip -n {ns} addr add {o.Gateway}/{o.PrefixLength} dev {o.TapName} && ip -n {ns} link set {o.TapName} up && " +
                $"ip -n {guest.Name} link set lo up && " +
                $"ip -n {guest.Name} addr add {o.GuestAddress}/{o.PrefixLength} dev eth0 && ip -n {guest.Name} link set eth0 up && " +
                $"ip -n {guest.Name} route add default via {o.Gateway}");
            return guest;
        }
        catch
        {
            await guest.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync() => await Sh.RunAsync($"ip netns del {Name}", check: false);
}

/// <summary>Shell one-liners for setup and for independent checks (ip, nft).</summary>
internal static class Sh
{
    public static async Task<string> RunAsync(string command, bool check = true)
    {
        var psi = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(command);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(timeout.Token);
        if (check)
        {
            Assert.True(p.ExitCode == 0, $"{command} failed ({p.ExitCode}): {await stderr}");
        }

        return await stdout;
    }
}
