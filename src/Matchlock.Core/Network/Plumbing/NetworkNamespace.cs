using System.Globalization;
using System.Net.Sockets;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Matchlock.Core.Interop;
using Matchlock.Core.Vm;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Network.Plumbing;

/// <summary>
/// One sandbox's network (docs/ARCHITECTURE.md D7): a named network namespace <c>matchlock-&lt;vmid&gt;</c>
/// holding a tap for QEMU, a private /30 between the tap (gateway) and the guest, no route out,
/// and the <c>inet matchlock</c> nftables table that DNATs guest TCP to the proxy and DNS to the
/// DNS responder and drops everything else. Everything lives inside the namespace, so the host's
/// interfaces, routes, firewall and <c>ip_forward</c> are never touched.
/// </summary>
/// <remarks>
/// Order of use: <see cref="CreateAsync"/> (the firewall already drops all guest traffic), open the
/// listeners with <see cref="OpenTcpListener"/> / <see cref="OpenUdp"/>, hand their ports to
/// <see cref="ApplyRedirectsAsync"/>, start the VM with <see cref="Attachment"/>, configure the
/// guest with <see cref="GuestConfiguration"/>. Dispose after the VM has exited.
/// <para>
/// Namespaces are made with iproute2 (<c>ip netns add</c>): it creates the /var/run/netns bind
/// mount every other tool (<c>ip netns exec</c>, <c>nft</c>, a debugging human) understands, and
/// <c>ip netns exec</c> is how QEMU is started inside it without forking (see
/// <see cref="ChildProcess"/>). The rule set goes through <c>nft -f</c>, which applies it as one
/// transaction. Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN).
/// </para>
/// </remarks>
internal sealed partial class NetworkNamespace : IAsyncDisposable
{
    /// <summary>Namespace name prefix; <see cref="SweepAsync"/> only ever touches names with it.</summary>
    public const string NamePrefix = "matchlock-";

    internal const string NetnsDir = "/var/run/netns";

    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);

    // Guards _sockets and _disposed: sockets may be opened from any thread.
    private readonly Lock _lock = new();
    private readonly List<Socket> _sockets = [];
    private bool _disposed;

    private NetworkNamespace(string vmId, NetworkNamespaceOptions options)
    {
        VmId = vmId;
        Options = options;
        NamespaceName = NamePrefix + vmId;
        GuestMac = MacFor(vmId);
    }

    public string VmId { get; }

    public NetworkNamespaceOptions Options { get; }

    /// <summary><c>matchlock-&lt;vmid&gt;</c>.</summary>
    public string NamespaceName { get; }

    /// <summary>The namespace file (<c>/var/run/netns/NAME</c>).</summary>
    public string NamespacePath => Path.Combine(NetnsDir, NamespaceName);

    /// <summary>Locally administered unicast MAC derived from the VM id.</summary>
    public string GuestMac { get; }

    /// <summary>What the VM backend needs to give the guest its NIC.</summary>
    public VmNetworkAttachment Attachment => new(NamespaceName, Options.TapName, GuestMac);

    /// <summary>The <c>network</c> part of the guest's configure request.</summary>
    public GuestNetworkConfig GuestConfiguration => new()
    {
        Address = Options.GuestAddress.ToString(),
        PrefixLength = Options.PrefixLength,
        Gateway = Options.Gateway.ToString(),
        Mtu = Options.Mtu,
        Interface = Options.GuestInterface,
    };

    /// <summary>
    /// Creates the namespace, tap, addresses and a firewall that drops all guest traffic. On any
    /// failure (or cancellation) everything made so far is removed before the exception propagates.
    /// </summary>
    /// <exception cref="NetworkNamespaceException">A tool failed, or the namespace already exists.</exception>
    public static async Task<NetworkNamespace> CreateAsync(string vmId, NetworkNamespaceOptions? options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(vmId);
        if (vmId.Length > 64 || !vmId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
        {
            throw new ArgumentException($"vm id '{vmId}' must be 1-64 characters of [A-Za-z0-9_-]", nameof(vmId));
        }

        options ??= new NetworkNamespaceOptions();
        options.Validate();
        var network = new NetworkNamespace(vmId, options);
        var created = false;
        try
        {
            // "ip netns add" fails if the name exists: we never adopt (or later delete) a
            // namespace someone else made.
            await RunAsync(["ip", "netns", "add", network.NamespaceName], cancellationToken);
            created = true;

            // Before the tap exists, so it is born without IPv6 (no link-local address, no
            // router solicitations); then for the tap itself in case it was not.
            network.InNamespace(() =>
            {
                WriteSysctl("net/ipv6/conf/all/disable_ipv6", "1");
                WriteSysctl("net/ipv6/conf/default/disable_ipv6", "1");
                return 0;
            });

            var tap = options.TapName;
            var uid = Matchlock.Core.Interop.LinuxNative.EffectiveUserId.ToString(CultureInfo.InvariantCulture);
            var prefix = options.PrefixLength.ToString(CultureInfo.InvariantCulture);
            var batch = new StringBuilder()
                .Append("link set lo up\n")
                // Persistent tap owned by our user, so QEMU (same user) can attach to it by name.
                .Append(CultureInfo.InvariantCulture, $"tuntap add dev {tap} mode tap user {uid}\n")
                .Append(CultureInfo.InvariantCulture, $"link set dev {tap} mtu {options.Mtu} up\n")
                .Append(CultureInfo.InvariantCulture, $"addr add {options.Gateway}/{prefix} dev {tap}\n")
                .ToString();
            await RunAsync(["ip", "-n", network.NamespaceName, "-batch", "-"], cancellationToken, batch);
            network.InNamespace(() =>
            {
                WriteSysctl($"net/ipv6/conf/{tap}/disable_ipv6", "1");
                return 0;
            });

            await network.LoadRulesetAsync(null, cancellationToken);
            return network;
        }
        catch (Exception ex)
        {
            if (created)
            {
                await network.RemoveNamespaceAsync();
            }

            if (ex is OperationCanceledException or NetworkNamespaceException)
            {
                throw;
            }

            throw new NetworkNamespaceException($"cannot create the network of {vmId}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Replaces the firewall with one that sends guest TCP to <see cref="NetworkRedirects.TcpProxyPort"/>
    /// and guest DNS to the DNS ports on the gateway, dropping the rest. Atomic.
    /// </summary>
    public async Task ApplyRedirectsAsync(NetworkRedirects redirects, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(redirects);
        redirects.Validate();
        ThrowIfDisposed();
        await LoadRulesetAsync(redirects, cancellationToken);
    }

    /// <summary>
    /// Removes the namespace and everything in it (tap, addresses, nftables table) and closes
    /// the sockets opened through <see cref="OpenTcpListener"/>/<see cref="OpenUdp"/> (a socket
    /// holds a reference on its namespace; closing twice is harmless). Never throws.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        Socket[] sockets;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            sockets = [.. _sockets];
            _sockets.Clear();
        }

        foreach (var s in sockets)
        {
            s.Dispose();
        }

        await RemoveNamespaceAsync();
    }

    private async Task LoadRulesetAsync(NetworkRedirects? redirects, CancellationToken cancellationToken)
    {
        var script = NftRuleset.Render(Options.TapName, Options.Gateway, redirects);
        await RunAsync(["ip", "netns", "exec", NamespaceName, "nft", "-f", "-"], cancellationToken, script);
    }

    /// <summary>Deletes the tap explicitly (so it is gone even if a stray socket keeps the namespace alive), then the namespace.</summary>
    private async Task RemoveNamespaceAsync()
    {
        if (!File.Exists(NamespacePath))
        {
            return;
        }

        try
        {
            await RunAsync(["ip", "-n", NamespaceName, "link", "del", Options.TapName], CancellationToken.None);
        }
        catch (NetworkNamespaceException)
        {
            // Not created yet, or already gone with its QEMU: the namespace removal below is what matters.
        }

        await DeleteNamespaceAsync(NamespaceName);
    }

    internal static async Task DeleteNamespaceAsync(string name)
    {
        try
        {
            await RunAsync(["ip", "netns", "del", name], CancellationToken.None);
        }
        catch (NetworkNamespaceException) when (!File.Exists(Path.Combine(NetnsDir, name)))
        {
            // Someone else (a concurrent sweep) removed it first.
        }
    }

    private T InNamespace<T>(Func<T> work) => NamespaceThread.Run(NamespacePath, work);

    private static void WriteSysctl(string key, string value)
    {
        // /proc/sys/net shows the namespace of the thread that opens it.
        var path = "/proc/sys/" + key;
        if (File.Exists(path))
        {
            File.WriteAllText(path, value);
        }
    }

    private void ThrowIfDisposed()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
        }
    }

    private static async Task RunAsync(string[] command, CancellationToken cancellationToken, string? input = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ToolTimeout);
        ProcessResult result;
        try
        {
            result = await ProcessRunner.RunAsync(command[0], command[1..], null, input, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new NetworkNamespaceException($"'{string.Join(' ', command)}' did not finish within {ToolTimeout.TotalSeconds:0} s");
        }
        catch (FileNotFoundException ex)
        {
            throw new NetworkNamespaceException($"{command[0]} is not installed; the sandbox network needs iproute2 and nftables (apt-get install iproute2 nftables)", ex);
        }

        if (result.ExitCode != 0)
        {
            throw new NetworkNamespaceException(
                $"'{string.Join(' ', command)}' failed (exit {result.ExitCode}): {result.StandardError.Trim()}{(IsRoot() ? "" : " (the sandbox network needs root)")}");
        }
    }

    private static bool IsRoot() => Matchlock.Core.Interop.LinuxNative.EffectiveUserId == 0;

    private static string MacFor(string vmId)
    {
        var h = SHA256.HashData(Encoding.UTF8.GetBytes(vmId));

        // 0x02: locally administered, unicast.
        return string.Create(CultureInfo.InvariantCulture, $"02:{h[0]:x2}:{h[1]:x2}:{h[2]:x2}:{h[3]:x2}:{h[4]:x2}");
    }
}
