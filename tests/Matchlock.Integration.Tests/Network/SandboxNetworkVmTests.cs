using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Matchlock.Core;
using Matchlock.Core.Images;
using Matchlock.Core.Network.Plumbing;
using Matchlock.Core.Sandboxes;
using Matchlock.Core.State;

namespace Matchlock.Integration.Tests.Network;

/// <summary>
/// The sealed network with a real guest (docs/ARCHITECTURE.md D7): one VM boot with a NIC in its own
/// namespace, busybox tools inside, a plain listener standing in for the proxy. Proves the
/// guest's NIC setup, that TCP to an arbitrary address ends at the listener with its original
/// destination, that ICMP gets nothing, and that the namespace goes with the VM. Also (no VM)
/// that the sweep removes the namespace of a VM whose owner was SIGKILLed.
/// </summary>
public sealed class SandboxNetworkVmTests : IAsyncLifetime
{
    private readonly MatchlockHome _home = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => _home.InitializeAsync();

    public ValueTask DisposeAsync() => _home.DisposeAsync();

    [Fact]
    public async Task Guest_gets_its_nic_and_its_tcp_to_anywhere_reaches_the_listener_with_the_original_destination()
    {
        VmPrerequisites.Ensure();
        if (Environment.UserName != "root")
        {
            Assert.Skip("the sandbox network needs root");
        }

        Socket? proxy = null;
        NetworkNamespace? made = null;
        var spec = new SandboxSpec { Image = "busybox", MemoryMb = 256 };
        var env = SandboxEnvironment.CreateDefault() with
        {
            Images = new ImageStore(Path.Combine(_home.Root, "images")),
            VmsDir = _home.VmsDir,
            StatePath = Path.Combine(_home.Root, "state.db"),
            PlumbingOnly = async (id, ct) =>
            {
                var network = await NetworkNamespace.CreateAsync(id, new NetworkNamespaceOptions { Mtu = 1400 }, ct);
                proxy = network.OpenTcpListener();
                var dnsUdp = network.OpenUdp(53);
                var dnsTcp = network.OpenTcpListener(53);
                await network.ApplyRedirectsAsync(new NetworkRedirects(NetworkNamespace.PortOf(proxy), 53, 53), ct);
                made = network;
                return network;
            },
        };

        string netnsPath;
        await using (var sandbox = await Sandbox.CreateAsync(spec, env, Ct))
        {
            netnsPath = made!.NamespacePath;
            Assert.True(File.Exists(netnsPath));

            var (_, ifconfig, _) = await Exec(sandbox, ["ifconfig", "eth0"]);
            Assert.Contains("inet addr:10.77.0.2", ifconfig);
            Assert.Contains("Mask:255.255.255.252", ifconfig);
            Assert.Contains("MTU:1400", ifconfig);
            Assert.Equal("1400", (await Exec(sandbox, ["cat", "/sys/class/net/eth0/mtu"])).Stdout.Trim());
            Assert.Equal("1", (await Exec(sandbox, ["cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"])).Stdout.Trim());
            Assert.Matches(@"0\.0\.0\.0\s+10\.77\.0\.1\s+0\.0\.0\.0\s+UG", (await Exec(sandbox, ["route", "-n"])).Stdout);
            Assert.Contains("nameserver 10.77.0.1", (await Exec(sandbox, ["cat", "/etc/resolv.conf"])).Stdout);

            // TCP to an address that exists nowhere in here: the connection ends at our listener.
            // nc, not wget: this busybox's wget segfaults even on the host (rc 139, any URL).
            var client = Exec(sandbox, ["sh", "-c", "printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' | nc -w 10 93.184.216.34 8443"]);
            var accept = proxy!.AcceptAsync(Ct).AsTask();
            if (await Task.WhenAny(accept, client, Task.Delay(TimeSpan.FromSeconds(20), Ct)) != accept)
            {
                Assert.Fail($"no connection reached the listener; nc: {(client.IsCompleted ? (await client).ToString() : "still running")}\n{await DiagnoseAsync(made.NamespaceName)}");
            }

            using (var accepted = await accept)
            {
                Assert.Equal(new IPEndPoint(IPAddress.Parse("93.184.216.34"), 8443), OriginalDestination.Get(accepted));
                var buffer = new byte[4096];
                var request = new StringBuilder();
                while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                {
                    var n = await accepted.ReceiveAsync(buffer, Ct);
                    Assert.NotEqual(0, n);
                    request.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }

                Assert.StartsWith("GET /probe HTTP/1.", request.ToString());
                await accepted.SendAsync("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"u8.ToArray(), Ct);
                accepted.Shutdown(SocketShutdown.Send);
            }

            var (clientResult, body, _) = await client;
            Assert.Equal(0, clientResult.ExitCode);
            Assert.EndsWith("\r\n\r\nhello", body);

            // ICMP goes nowhere: not to the gateway, not beyond.
            Assert.NotEqual(0, (await Exec(sandbox, ["ping", "-c", "1", "-W", "2", "10.77.0.1"])).Result.ExitCode);
            Assert.NotEqual(0, (await Exec(sandbox, ["ping", "-c", "1", "-W", "2", "93.184.216.34"])).Result.ExitCode);
        }

        Assert.False(File.Exists(netnsPath), $"{netnsPath} outlived its VM");
    }

    [Fact]
    public async Task The_sweep_removes_the_namespace_of_a_vm_whose_owner_was_killed()
    {
        if (Environment.UserName != "root" || !File.Exists("/usr/sbin/ip"))
        {
            Assert.Skip("the sandbox network needs root and iproute2");
        }

        // A stand-in owner: a process we start, record as the VM's owner, and SIGKILL.
        var vmsDir = Path.Combine(Path.GetTempPath(), "matchlock-sweep-" + Guid.NewGuid().ToString("N")[..8]);
        var id = VmId.New();
        var vmDir = Directory.CreateDirectory(Path.Combine(vmsDir, id)).FullName;
        try
        {
            using var owner = Process.Start("sleep", "60");
            var start = Matchlock.Core.Interop.OwnerNative.ProcessStartTime(owner.Id);
            await File.WriteAllTextAsync(Path.Combine(vmDir, OwnerRecord.FileName), string.Create(CultureInfo.InvariantCulture, $"{owner.Id} {start} rm\n"), Ct);
            var network = await NetworkNamespace.CreateAsync(id, null, Ct);

            Assert.Empty(await StaleVmSweeper.SweepNetworksAsync(vmsDir, Ct));
            Assert.True(File.Exists(network.NamespacePath));

            owner.Kill();
            await owner.WaitForExitAsync(Ct);
            Assert.Contains(id, await StaleVmSweeper.SweepNetworksAsync(vmsDir, Ct));
            Assert.False(File.Exists(network.NamespacePath));
            await network.DisposeAsync();
        }
        finally
        {
            Directory.Delete(vmsDir, recursive: true);
        }
    }

    private static async Task<string> DiagnoseAsync(string ns)
    {
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"ip -n {ns} -s link show; ip -n {ns} addr; ip -n {ns} neigh; ip netns exec {ns} nft list ruleset; ip netns exec {ns} cat /proc/net/nf_conntrack 2>&1 | head");
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync(Ct) + await p.StandardError.ReadToEndAsync(Ct);
        await p.WaitForExitAsync(Ct);
        return output;
    }

    private static async Task<(ExecResult Result, string Stdout, string Stderr)> Exec(Sandbox sandbox, string[] argv)
    {
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var result = await sandbox.ExecAsync(new ExecSpec { Argv = argv }, null, stdout, stderr, Ct);
        return (result, Encoding.UTF8.GetString(stdout.ToArray()), Encoding.UTF8.GetString(stderr.ToArray()));
    }
}
