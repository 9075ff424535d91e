namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>
/// The hostile-guest suite (issue 11): one sandbox boot, one Python script of attacks run inside it
/// (<c>hostile_guest.py</c>: DNS tunnelling and rebinding, direct IPs, metadata, ICMP/UDP/IPv6,
/// SNI≠Host, CRLF and duplicate Host, absolute-form and CONNECT, h2 smuggling, WebSocket upgrades to
/// foreign hosts, placeholders in every position, raw TCP to shared addresses, HTTP the sniffer does
/// not recognise, TLS after a delay, secrets over cleartext, floods), against loopback upstreams
/// that record every byte. Proves that nothing an attack sent arrived where the policy forbids it,
/// that the secret value only ever reached its host inside TLS, and (controls) that the allowed
/// paths still work, so the silence of the recorders means something. Reports "N attacks, 0 leaks".
/// </summary>
public sealed class HostileGuestTests(HostileGuestFixture net) : IClassFixture<HostileGuestFixture>
{
    /// <summary>The suite's lower bound on distinct attacks (issue 11).</summary>
    private const int MinimumAttacks = 40;

    [Fact]
    public async Task No_attack_from_inside_the_sandbox_gets_anything_where_the_policy_forbids_it()
    {
        net.Ensure();
        var ct = TestContext.Current.CancellationToken;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(TimeSpan.FromMinutes(12));
        var (code, stdout, stderr) = await net.RunAttacksAsync(bound.Token);

        // Let late connections (the proxy's upstream side, idle recorders) settle before judging.
        // Deliberate: a quiet period, since there is no "all arrived" condition for attacks that
        // should never arrive at all.
        await Task.Delay(TimeSpan.FromSeconds(2), ct);
        var eventsPath = Path.Combine(net.Sandbox.Directory, "events.jsonl");
        var events = File.Exists(eventsPath) ? await File.ReadAllTextAsync(eventsPath, ct) : "";
        var verdict = HostileVerdict.Judge(net, stdout, events);
        var report = verdict.Report();
        var reportPath = Path.Combine(Path.GetTempPath(), "matchlock-hostile-report.txt");
        await File.WriteAllTextAsync(reportPath, report + (stderr.Length > 0 ? "\nguest stderr:\n" + stderr : ""), ct);
        await File.WriteAllTextAsync(Path.ChangeExtension(reportPath, ".recorded.txt"), HostileVerdict.Dump(net.Upstreams.Recordings), ct);
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        TestContext.Current.TestOutputHelper?.WriteLine(net.Upstreams.IcmpLimitation ?? "the host's ICMP was recorded (raw socket)");

        Assert.True(code == 0, $"the attack script failed (exit {code}):\n{stderr}\n{report}");
        Assert.True(verdict.HarnessProblems.Count == 0, "the harness did not prove anything:\n" + string.Join("\n", verdict.HarnessProblems) + "\n" + report);
        Assert.True(verdict.Attacks.Count >= MinimumAttacks, $"only {verdict.Attacks.Count} attacks ran:\n{report}");
        Assert.True(verdict.Leaks.Count == 0,
            $"{verdict.Attacks.Count} attacks, {verdict.LeakedAttacks().Count} leaks ({string.Join(", ", verdict.LeakedAttacks())}):\n" + string.Join("\n", verdict.Leaks) + $"\n(full report: {reportPath})");
    }
}
