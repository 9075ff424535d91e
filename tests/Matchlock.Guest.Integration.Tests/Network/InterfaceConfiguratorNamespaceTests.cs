using System.Runtime.InteropServices;
using Matchlock.Guest.Configuration;
using Matchlock.Guest.Tests;
using Matchlock.Protocol.Messages;
using Matchlock.Integration.Tests;

namespace Matchlock.Guest.Integration.Tests.Network;

/// <summary>
/// The ioctl-based NIC setup, run on a thread inside a scratch network namespace whose NIC has a
/// name the host does not use, so even a mistake could not touch the host's interfaces.
/// Checked with iproute2 as an independent oracle. Needs root and iproute2.
/// </summary>
public sealed partial class InterfaceConfiguratorNamespaceTests
{
    [Fact]
    public async Task Sets_address_mask_mtu_up_default_route_and_disables_ipv6()
    {
        HostPrerequisites.Ensure(HostNeeds.Root | HostNeeds.NetworkTools);

        var ns = "mltest-nic-" + Guid.NewGuid().ToString("N")[..8];
        Run($"ip netns add {ns}");
        try
        {
            Run($"ip -n {ns} link add mlnic0 type veth peer name mlpeer0");
            var config = new GuestNetworkConfig { Address = "10.77.0.2", PrefixLength = 30, Gateway = "10.77.0.1", Mtu = 1400, Interface = "mlnic0" };
            Exception? error = null;
            var thread = new Thread(() =>
            {
                try
                {
                    var fd = open($"/var/run/netns/{ns}", 0x80000 /* O_RDONLY|O_CLOEXEC */);
                    Assert.True(fd >= 0 && setns(fd, 0x40000000 /* CLONE_NEWNET */) == 0, "setns failed");
                    _ = close(fd);
                    InterfaceConfigurator.Apply(config);
                }
                catch (Exception ex)
                {
                    error = ex;
                }
            });
            thread.Start();
            thread.Join();
            Assert.Null(error);

            var link = Run($"ip -n {ns} -4 addr show dev mlnic0");
            Assert.Contains("inet 10.77.0.2/30", link);
            Assert.Contains("mtu 1400", link);
            Assert.Matches(@"<[A-Z_,-]*,UP[,>]", link);
            Assert.StartsWith("default via 10.77.0.1 dev mlnic0", Run($"ip -n {ns} -4 route show default").Trim());
            Assert.Equal("1", Run($"ip netns exec {ns} cat /proc/sys/net/ipv6/conf/mlnic0/disable_ipv6").Trim());
        }
        finally
        {
            Run($"ip netns del {ns}");
        }

        await Task.CompletedTask;
    }

    /// <summary>
    /// Runs a shell command through the guest's own spawner: this test process runs the guest's
    /// reaper (waitpid on any child), which would steal the exit status from System.Diagnostics.Process
    /// and make the runtime abort ("Error while reaping child").
    /// </summary>
    private static string Run(string command)
    {
        using var child = ProcessTestSupport.NewSpawner().Spawn(ProcessTestSupport.Shell(command));
        var (status, output, error) = ProcessTestSupport.RunToEndAsync(child).GetAwaiter().GetResult();
        Assert.True(status.ExitCode == 0, $"{command}: {error}");
        return output;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
