using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Matchlock.Core.Images;
using Matchlock.Core.Network;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>
/// One Debian guest (python3) behind the whole sealed network, and the recording "internet" of
/// <see cref="HostileUpstreams"/> it attacks. Names (all through <c>--add-host</c>, so the guest
/// sees 198.18/15 stand-ins for the host's loopback):
/// <list type="bullet">
/// <item><c>allowed.test</c> → 127.0.0.1, on the allow-list;</item>
/// <item><c>forbidden.test</c> → 127.0.0.1, not allowed: it shares the address (and every recorder) with allowed.test;</item>
/// <item><c>secret.test</c> → 127.0.0.1, the host of secret SECRET_KEY;</item>
/// <item><c>plain.test</c> → 127.0.0.1, the host of PLAIN_KEY declared for <c>http://plain.test</c> (cleartext allowed);</item>
/// <item><c>raw.test</c> → 127.0.0.2 with a raw-TCP rule for one port; <c>rawshared.test</c> → 127.0.0.1 with a raw rule (but a shared address);</item>
/// <item><c>rebind.test</c>: allowed, not mapped: resolved by <see cref="FakeUpstreamDns"/> (to 127.0.0.1).</item>
/// </list>
/// </summary>
public sealed class HostileGuestFixture : IAsyncLifetime
{
    /// <summary>The value of SECRET_KEY: may only ever arrive inside TLS at secret.test.</summary>
    public static readonly string SecretValue = "hostile-secret-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>The value of PLAIN_KEY: may only arrive at plain.test (cleartext allowed there).</summary>
    public static readonly string PlainSecretValue = "hostile-plain-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    private readonly MatchlockHome _home = new();

    internal HostileUpstreams Upstreams { get; private set; } = null!;

    public Sandbox Sandbox { get; private set; } = null!;

    public string? SkipReason { get; private set; }

    /// <summary>Per-run marker nonce: the guest's markers are hxm-NONCE-attack-name.</summary>
    public string Nonce { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    /// <summary>
    /// How long the proxy waits for a silent client's first byte before closing it (shorter than
    /// the 30 s default so the silent-client attack sees the close within its wait).
    /// </summary>
    public static TimeSpan FirstByteTimeout => TimeSpan.FromSeconds(5);

    /// <summary>How long the silent-client attack stays silent, in seconds.</summary>
    public int SilentWaitSeconds => 12;

    public async ValueTask InitializeAsync()
    {
        await _home.InitializeAsync();
        if (VmPrerequisites.Missing() is not null)
        {
            return;
        }

        SkipReason = await _home.ImportDebianTestImageAsync();
        if (SkipReason is not null)
        {
            return;
        }

        var ct = TestContext.Current.CancellationToken;
        Upstreams = await HostileUpstreams.StartAsync(ct);
        var caFile = Path.Combine(_home.Root, "upstream-ca.pem");
        await File.WriteAllTextAsync(caFile, Upstreams.Ca.CertificatePem, ct);

        var loopback = new[] { "allowed.test", "forbidden.test", "secret.test", "plain.test", "rawshared.test" }
            .Select(h => KeyValuePair.Create(h, IPAddress.Loopback));
        var network = new SandboxNetworkSpec
        {
            AllowHosts = ["allowed.test", FakeUpstreamDns.RebindName],
            Secrets = [$"SECRET_KEY={SecretValue}@secret.test", $"PLAIN_KEY={PlainSecretValue}@http://plain.test"],
            AllowTcp = [$"raw.test:{Upstreams.Raw.Port}", $"rawshared.test:{Upstreams.RawShared.Port}"],
            AddHosts = [.. loopback, KeyValuePair.Create("raw.test", HostileUpstreams.RawHostAddress)],
            DnsServers = [FakeUpstreamDns.Address],
            UpstreamCaFile = caFile,
            FirstByteTimeout = FirstByteTimeout,
        };

        var spec = new SandboxSpec { Image = "debian-test", MemoryMb = 512, NoNetwork = false, Network = network };
        var env = SandboxEnvironment.CreateDefault() with
        {
            Images = new ImageStore(Path.Combine(_home.Root, "images")),
            VmsDir = _home.VmsDir,
            StatePath = Path.Combine(_home.Root, "state.db"),
        };
        Sandbox = await Sandbox.CreateAsync(spec, env, ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (Sandbox is not null)
        {
            await Sandbox.DisposeAsync();
        }

        if (Upstreams is not null)
        {
            await Upstreams.DisposeAsync();
        }

        await _home.DisposeAsync();
    }

    public void Ensure()
    {
        VmPrerequisites.Ensure();
        if (SkipReason is not null)
        {
            HostPrerequisites.SkipOrFail(SkipReason);
        }
    }

    /// <summary>The configuration the guest script reads from $HOSTILE_CONFIG.</summary>
    internal string GuestConfig() => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["nonce"] = Nonce,
        ["silent_wait"] = SilentWaitSeconds,
        ["ports"] = new Dictionary<string, int>
        {
            ["tcp"] = Upstreams.Tcp.Port,
            ["tls"] = Upstreams.Tls.Port,
            ["webs"] = Upstreams.WebHttpsPort,
            ["web"] = Upstreams.WebHttpPort,
            ["raw"] = Upstreams.Raw.Port,
            ["raw_other"] = Upstreams.RawOther.Port,
            ["raw_shared"] = Upstreams.RawShared.Port,
            ["silent"] = Upstreams.Silent.Port,
            ["tcp6"] = Upstreams.Tcp6.Port,
            ["udp"] = Upstreams.Udp.Port,
            ["udp6"] = Upstreams.Udp6.Port,
        },
    });

    /// <summary>Runs the attack script in the guest; returns its stdout and stderr.</summary>
    internal async Task<(int Code, string Stdout, string Stderr)> RunAttacksAsync(CancellationToken cancellationToken)
    {
        using var script = typeof(HostileGuestFixture).Assembly.GetManifestResourceStream("hostile_guest.py")
            ?? throw new InvalidOperationException("the embedded hostile_guest.py is missing");
        using var stdout = new MemoryStream();
        using var stderr = new MemoryStream();
        var result = await Sandbox.ExecAsync(
            new ExecSpec
            {
                Argv = ["python3", "-u", "-"],
                Env = ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOSTILE_CONFIG=" + GuestConfig()],
            },
            script, stdout, stderr, cancellationToken);
        return (result.ExitCode, Encoding.UTF8.GetString(stdout.ToArray()), Encoding.UTF8.GetString(stderr.ToArray()));
    }
}
