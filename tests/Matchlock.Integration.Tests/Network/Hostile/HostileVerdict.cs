using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Matchlock.Integration.Tests.Network.Hostile;

/// <summary>One line the guest script printed for an attack or a control.</summary>
internal sealed record GuestCase(string Kind, string Name, string Marker, string Observed, double Seconds);

/// <summary>
/// Judges one run: every attack marker (hxm-NONCE-name) found anywhere it may not be is a leak;
/// the secret values may only appear where they belong; raw relays only to the ruled port; the
/// controls must have arrived (else the harness proved nothing).
/// </summary>
internal sealed partial class HostileVerdict(string nonce)
{
    /// <summary>Sinks where an attack's marker may legitimately arrive (by design of the attack).</summary>
    private static readonly Dictionary<string, string[]> MarkerMayArrive = new(StringComparer.Ordinal)
    {
        // The raw rule relays the bytes; what matters there is that the value was never substituted.
        ["placeholder_over_raw_relay"] = ["raw"],
    };

    private readonly List<string> _leaks = [];
    private readonly string _nonce = nonce;
    private readonly List<string> _harness = [];

    public IReadOnlyList<GuestCase> Attacks { get; private init; } = [];

    public IReadOnlyList<GuestCase> Controls { get; private init; } = [];

    public IReadOnlyList<string> Leaks => _leaks;

    /// <summary>How many connections, requests or datagrams each upstream recorded.</summary>
    public IReadOnlyDictionary<string, int> SinkCounts { get; private set; } = new Dictionary<string, int>();

    /// <summary>Problems of the harness itself (a control that did not arrive, a missing summary).</summary>
    public IReadOnlyList<string> HarnessProblems => _harness;

    public static IReadOnlyList<GuestCase> ParseGuestOutput(string stdout, out int? done)
    {
        done = null;
        var cases = new List<GuestCase>();
        foreach (var line in stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!line.StartsWith('{'))
            {
                continue;
            }

            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (root.TryGetProperty("done", out var d))
            {
                done = d.GetInt32();
                continue;
            }

            var kind = root.TryGetProperty("attack", out _) ? "attack" : "control";
            cases.Add(new GuestCase(kind, root.GetProperty(kind).GetString()!, root.GetProperty("marker").GetString()!,
                root.GetProperty("observed").GetString() ?? "", root.GetProperty("seconds").GetDouble()));
        }

        return cases;
    }

    public static HostileVerdict Judge(HostileGuestFixture net, string stdout, string eventsJsonl)
    {
        var cases = ParseGuestOutput(stdout, out var done);
        var verdict = new HostileVerdict(net.Nonce)
        {
            Attacks = [.. cases.Where(c => c.Kind == "attack")],
            Controls = [.. cases.Where(c => c.Kind == "control")],
        };
        if (done != verdict.Attacks.Count)
        {
            verdict._harness.Add($"the guest script did not finish: {verdict.Attacks.Count} attacks reported, summary {done?.ToString() ?? "missing"}");
        }

        var records = net.Upstreams.Recordings.All.Select(r => (Record: r, Text: r.Snapshot())).ToList();
        verdict.SinkCounts = records.GroupBy(r => r.Record.Sink).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count());
        verdict.CheckMarkers(records, eventsJsonl);
        verdict.CheckSecret(HostileGuestFixture.SecretValue, "SECRET_KEY", records, eventsJsonl + stdout,
            r => r.OverTls && string.Equals(r.Host, "secret.test", StringComparison.OrdinalIgnoreCase));
        verdict.CheckSecret(HostileGuestFixture.PlainSecretValue, "PLAIN_KEY", records, eventsJsonl + stdout,
            r => string.Equals(r.Host, "plain.test", StringComparison.OrdinalIgnoreCase));
        verdict.CheckRawRelays(net, eventsJsonl);
        verdict.CheckControls(net, records);
        return verdict;
    }

    /// <summary>Everything every upstream recorded, for reading a failure.</summary>
    public static string Dump(Recordings recordings)
    {
        var text = new StringBuilder();
        foreach (var r in recordings.All)
        {
            text.AppendLine($"=== {r.Sink} host={r.Host ?? "-"} tls={r.OverTls}");
            text.AppendLine(NonPrintable().Replace(r.Snapshot(), "."));
        }

        return text.ToString();
    }

    public string Report()
    {
        var text = new StringBuilder();
        foreach (var c in Controls)
        {
            text.AppendLine($"control {c.Name} ({c.Seconds:0.0}s): {c.Observed}");
        }

        foreach (var a in Attacks)
        {
            text.AppendLine($"attack {a.Name} ({a.Seconds:0.0}s): {a.Observed}");
        }

        text.AppendLine("recorded: " + (SinkCounts.Count == 0 ? "nothing" : string.Join(", ", SinkCounts.Select(kv => $"{kv.Key} {kv.Value}"))));
        foreach (var h in _harness)
        {
            text.AppendLine("HARNESS: " + h);
        }

        foreach (var l in _leaks)
        {
            text.AppendLine("LEAK: " + l);
        }

        var leaked = LeakedAttacks().Count;
        text.AppendLine($"{Attacks.Count} attacks, {leaked} leaks");
        return text.ToString();
    }

    /// <summary>Attacks with at least one leak (a leak not tied to one attack counts as its own).</summary>
    public IReadOnlyList<string> LeakedAttacks() =>
        [.. _leaks.Select(l => l.Split(':', 2)[0]).Distinct(StringComparer.Ordinal)];

    private void CheckMarkers(List<(Recorded Record, string Text)> records, string eventsJsonl)
    {
        var prefix = $"hxm-{_nonce}-";
        foreach (var (record, text) in records)
        {
            foreach (var name in MarkersIn(text))
            {
                if (MarkerMayArrive.TryGetValue(name, out var sinks) && sinks.Contains(record.Sink))
                {
                    continue;
                }

                _leaks.Add($"{name}: its marker arrived at upstream '{record.Sink}'{(record.Host is null ? "" : $" (host {record.Host})")}: {Excerpt(text, prefix + name.Replace('_', '-'))}");
            }
        }

        // forbidden.test is never allowed: no upstream may see it as a Host or TLS server name,
        // whatever the request carried (it shares the address and every port with allowed.test).
        foreach (var (record, text) in records)
        {
            if (string.Equals(record.Host, "forbidden.test", StringComparison.OrdinalIgnoreCase) || ForbiddenHost().IsMatch(text))
            {
                var attack = MarkersIn(text).FirstOrDefault() ?? "forbidden_host";
                _leaks.Add($"{attack}: upstream '{record.Sink}' received a request for forbidden.test: {Excerpt(text, "forbidden.test")}");
            }
        }

        // The proxy's own account: a request carrying a marker that it allowed or forwarded.
        foreach (var line in eventsJsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var json = JsonDocument.Parse(line);
            var kind = json.RootElement.TryGetProperty("kind", out var k) ? k.GetString() : null;
            if (kind is "allowed" or "completed" or "secret_injected")
            {
                foreach (var name in MarkersIn(line))
                {
                    _leaks.Add($"{name}: the proxy recorded a '{kind}' event for it: {line}");
                }
            }
        }
    }

    private void CheckSecret(string value, string name, List<(Recorded Record, string Text)> records, string elsewhere, Func<Recorded, bool> mayHold)
    {
        var forms = SecretForms(value);
        foreach (var (record, text) in records)
        {
            if (!mayHold(record) && forms.FirstOrDefault(f => text.Contains(f, StringComparison.Ordinal)) is { } form)
            {
                var attack = MarkersIn(text).FirstOrDefault() ?? "secret";
                _leaks.Add($"{attack}: the value of {name} ({(form == value ? "plain" : "base64")}) arrived at upstream '{record.Sink}' (host {record.Host ?? "?"}, tls {record.OverTls}): {Excerpt(text, form)}");
            }
        }

        if (forms.Any(f => elsewhere.Contains(f, StringComparison.Ordinal)))
        {
            _leaks.Add($"secret: the value of {name} appears in the guest's output or the event log");
        }
    }

    private void CheckRawRelays(HostileGuestFixture net, string eventsJsonl)
    {
        foreach (var line in eventsJsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            if (root.TryGetProperty("kind", out var k) && k.GetString() == "passthrough"
                && root.TryGetProperty("port", out var p) && p.GetInt32() != net.Upstreams.Raw.Port)
            {
                _leaks.Add($"raw_relay: the proxy relayed raw TCP to a destination without a rule: {line}");
            }
        }

        if (Attacks.FirstOrDefault(a => a.Name == "silent_client") is { } silent && !silent.Observed.StartsWith("closed", StringComparison.Ordinal))
        {
            _leaks.Add($"silent_client: a silent connection was not closed within {net.SilentWaitSeconds} s (first-byte timeout {HostileGuestFixture.FirstByteTimeout.TotalSeconds:0} s): {silent.Observed}");
        }

        if (net.Upstreams.Silent.Connections > 0)
        {
            _leaks.Add($"silent_client: the proxy opened {net.Upstreams.Silent.Connections} connection(s) upstream for a client that said nothing");
        }
    }

    private void CheckControls(HostileGuestFixture net, List<(Recorded Record, string Text)> records)
    {
        bool Arrived(string control, string sink) => records.Any(r => r.Record.Sink == sink && r.Text.Contains($"hxc-{net.Nonce}-{control.Replace('_', '-')}", StringComparison.Ordinal));
        void Require(bool ok, string what)
        {
            if (!ok)
            {
                _harness.Add(what);
            }
        }

        Require(Arrived("control_https_allowed", "web-https"), "control_https_allowed did not reach the HTTPS upstream");
        Require(Arrived("control_http_allowed", "web-http"), "control_http_allowed did not reach the HTTP upstream");
        Require(Arrived("control_https_allowed_after_floods", "web-https"), "the proxy no longer served an allowed request after the floods");
        Require(records.Any(r => r.Record.Sink == "web-https" && r.Text.Contains("Bearer " + HostileGuestFixture.SecretValue, StringComparison.Ordinal)),
            "control_secret_over_tls: SECRET_KEY was not substituted for secret.test over TLS");
        var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes("user:" + HostileGuestFixture.SecretValue));
        Require(records.Any(r => r.Record.Sink == "web-https" && r.Record.Host == "secret.test" && r.Text.Contains("Basic " + basic, StringComparison.Ordinal)),
            "control_secret_over_tls: SECRET_KEY was not substituted inside Basic credentials for secret.test over TLS");
        Require(records.Any(r => r.Record.Sink == "dns" && r.Text.Contains("rebind", StringComparison.OrdinalIgnoreCase)),
            "control_dns_upstream: the sandbox's resolver never asked the fake upstream DNS");
        Require(records.Any(r => r.Record.Sink == "web-http" && r.Text.Contains("Bearer " + HostileGuestFixture.PlainSecretValue, StringComparison.Ordinal)),
            "control_plain_secret_over_http: PLAIN_KEY was not substituted for http://plain.test");
        Require(Arrived("control_raw_rule_server_speaks_first", "raw"), "control_raw_rule_server_speaks_first: the raw rule did not relay");
    }

    /// <summary>The value, and the three base64 renderings of it (at each alignment, inner quads only).</summary>
    private static string[] SecretForms(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        var forms = new List<string> { value };
        for (var k = 0; k < 3; k++)
        {
            var encoded = Convert.ToBase64String([.. new byte[k], .. bytes]);
            var start = k == 0 ? 0 : 4;
            var inner = encoded[start..^4];
            if (inner.Length >= 12)
            {
                forms.Add(inner);
            }
        }

        return [.. forms];
    }

    /// <summary>
    /// The attacks whose marker occurs in <paramref name="text"/>: the longest reported attack name
    /// following the prefix (a marker may be followed by more name-like text, as in a DNS label),
    /// or the raw text when no reported attack fits.
    /// </summary>
    private IEnumerable<string> MarkersIn(string text)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var prefix = $"hxm-{_nonce}-";
        foreach (Match match in Regex.Matches(text, Regex.Escape(prefix) + "([a-z0-9-]+)", RegexOptions.IgnoreCase))
        {
            var found = match.Groups[1].Value.ToLowerInvariant().Replace('-', '_');
            names.Add(Attacks.Select(a => a.Name).Where(n => found.StartsWith(n, StringComparison.Ordinal)).MaxBy(n => n.Length) ?? found);
        }

        return names;
    }

    private static string Excerpt(string text, string around)
    {
        var i = text.IndexOf(around, StringComparison.OrdinalIgnoreCase);
        var start = Math.Max(0, i - 120);
        var excerpt = text.Substring(start, Math.Min(text.Length - start, 260));
        return NonPrintable().Replace(excerpt.Replace("\r\n", "⏎", StringComparison.Ordinal), ".");
    }

    [GeneratedRegex(@"(^|\n)host:[ \t]*forbidden\.test", RegexOptions.IgnoreCase)]
    private static partial Regex ForbiddenHost();

    [GeneratedRegex(@"[\x00-\x08\x0b-\x1f\x7f-\xff]")]
    private static partial Regex NonPrintable();
}
