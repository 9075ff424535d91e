using Matchlock.Guest.Configuration;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Agent;

/// <summary>
/// Applies the host's configure request (sent once, right after hello, before any exec):
/// clock, hostname and its files, resolv.conf, the sandbox cgroup's limits (pids.max, cpu.max),
/// the NIC, the interception CA and the <c>--disk</c> mounts. Every step is attempted; the reply
/// lists the ones that failed, so one bad value does not hide the others.
/// </summary>
internal sealed class ConfigureHandler(AgentOptions options, CgroupLayout? cgroups)
{
    /// <summary>The hostname after configure, for HOSTNAME in exec environments.</summary>
    internal string? Hostname { get; private set; }

    internal GuestReply Apply(ConfigureRequest request)
    {
        var errors = new List<string>();
        void Step(string what, Action action)
        {
            try
            {
                action();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                errors.Add($"{what}: {e.Message}");
            }
        }

        if (request.UnixTimeMs > 0 && options.SetClock)
        {
            Step("set clock", () => SystemClock.Set(DateTimeOffset.FromUnixTimeMilliseconds(request.UnixTimeMs)));
        }

        Step("hostname", () =>
        {
            GuestIdentity.ValidateHostname(request.Hostname);
            if (options.SetHostname)
            {
                GuestIdentity.SetHostname(request.Hostname);
            }

            GuestIdentity.WriteHostFiles(options.Root, request.Hostname, request.Hosts.Select(h => (h.Name, h.Address)).ToArray());
            Hostname = request.Hostname;
        });

        if (request.DnsServers.Count > 0)
        {
            Step("resolv.conf", () => GuestIdentity.WriteResolvConf(options.Root, request.DnsServers, []));
        }

        if (request.Network is { } network && options.ConfigureNetwork)
        {
            Step("network", () => InterfaceConfigurator.Apply(network));
        }

        if (!string.IsNullOrEmpty(request.CaCertificatePem))
        {
            Step("ca certificate", () => TrustBundle.Install(options.Root, request.CaCertificatePem));
        }

        if (!string.IsNullOrEmpty(request.CpuMax))
        {
            Step("cpu.max", () => Cgroups().SetCpuMax(request.CpuMax));
        }

        if (request.PidsLimit is { } pids)
        {
            Step("pids.max", () => Cgroups().SetPidsLimit(pids));
        }

        // Last: the files written above belong to the image's root, never to a user's volume.
        // Only when everything else worked, so a failed configure leaves no volume mounted.
        // (A request without the field deserializes it as null, not as its empty default.)
        if (request.Disks is { Count: > 0 } disks && errors.Count == 0)
        {
            Step("disks", () => DiskMounts.MountAll(options.Root, disks));
        }

        CgroupLayout Cgroups() => cgroups ?? throw new IOException("the guest has no cgroup layout (cgroup2 not mounted?)");

        return errors.Count == 0 ? new GuestReply() : GuestReply.Failure("configure: " + string.Join("; ", errors), "ECONFIG");
    }
}
