using System.Buffers;
using System.Net;
using System.Text;
using Matchlock.Core.Network.Policy;
using Matchlock.Core.Network.Proxy;

namespace Matchlock.Core.Tests.Network;

/// <summary>Unit tier: host names, patterns, address ranges, pinning, secrets, sniffing. No sockets.</summary>
public sealed class PolicyTests
{
    private static HostName H(string s) => HostName.Parse(s);

    [Theory]
    [InlineData("API.Example.COM.", "api.example.com")]
    [InlineData("bücher.example", "xn--bcher-kva.example")]
    [InlineData("[::1]", "::1")]
    [InlineData("::FFFF:127.0.0.1", "::ffff:127.0.0.1")]
    [InlineData("127.1", "127.0.0.1")]
    [InlineData("0x7f.0.0.1", "127.0.0.1")]
    [InlineData("_dmarc.x.com", "_dmarc.x.com")]
    public void HostNameIsCanonical(string input, string canonical) => Assert.Equal(canonical, H(input).Value);

    [Theory]
    [InlineData("", "empty")]
    [InlineData("a..b", "empty label")]
    [InlineData("a b.com", "' '")]
    [InlineData("-x.com", "'-'")]
    [InlineData("1.2.3.999", "IPv4")]
    [InlineData("[::1", "']'")]
    [InlineData("fe80::1%eth0", "zone")]
    public void HostNameRejectsGarbageWithAReason(string input, string fragment)
    {
        var e = Assert.Throws<FormatException>(() => H(input));
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Loopback_add_hosts_reach_the_guest_as_a_stand_in_the_proxy_dials_back_to_loopback()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("api.test")]);
        var api = HostName.Parse("api.test");
        policy.AddHost(api, IPAddress.Loopback);
        policy.AddHost(HostName.Parse("db.test"), IPAddress.Parse("10.1.2.3"));

        var guestSees = Assert.Single(policy.StaticAddresses(api));
        Assert.Equal(IPAddress.Parse("198.18.0.1"), guestSees);
        Assert.True(policy.CheckDestination(api, guestSees).Allowed);
        Assert.Equal(IPAddress.Loopback, policy.UpstreamAddress(guestSees));
        // Other mappings are given as they are; unknown addresses are dialled unchanged.
        Assert.Equal([IPAddress.Parse("10.1.2.3")], policy.StaticAddresses(HostName.Parse("db.test")));
        Assert.Equal(IPAddress.Parse("198.18.0.9"), policy.UpstreamAddress(IPAddress.Parse("198.18.0.9")));
        // The stand-in is legal only for its name.
        Assert.False(policy.CheckDestination(HostName.Parse("db.test"), guestSees).Allowed);
    }

    [Fact]
    public void IPv6HostHasBracketsInUris() => Assert.Equal("[::1]", H("::1").UriHost);

    [Theory]
    [InlineData("*", "anything.at.all", true)]
    [InlineData("*.x.com", "a.x.com", true)]
    [InlineData("*.x.com", "a.b.x.com", true)]
    [InlineData("*.x.com", "x.com", false)]
    [InlineData("*.x.com", "evilx.com", false)]
    [InlineData("api.*", "api.x.com", true)]
    [InlineData("api.*", "apix.com", false)]
    [InlineData("api-*.x.com", "api-eu.x.com", true)]
    [InlineData("api-*.x.com", "api-eu.y.x.com", false)]
    [InlineData("API.X.com", "api.x.COM.", true)]
    [InlineData("*.X.COM", "A.x.com", true)]
    [InlineData("x.com", "y.x.com", false)]
    [InlineData("10.0.0.1", "10.0.0.1", true)]
    [InlineData("*.x.com", "10.0.0.1", false)]
    public void GlobsMatchPerReference(string pattern, string host, bool expected) =>
        Assert.Equal(expected, HostPattern.Parse(pattern).Matches(H(host)));

    [Fact]
    public void InterceptionWithEmptyAllowListAllowsNothing()
    {
        var policy = new NetworkPolicy(intercept: true);
        var d = policy.IsHostAllowed(H("example.com"));
        Assert.False(d.Allowed);
        Assert.Contains("allow-list is empty", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutInterceptionEveryHostIsAllowedButPrivateAddressesAreNot()
    {
        var policy = new NetworkPolicy(intercept: false);
        Assert.True(policy.IsHostAllowed(H("example.com")).Allowed);
        policy.Pin(H("example.com"), [IPAddress.Parse("93.184.216.34")]);
        policy.Pin(H("intranet.example"), [IPAddress.Parse("10.1.2.3")]);
        Assert.True(policy.CheckDestination(H("example.com"), IPAddress.Parse("93.184.216.34")).Allowed);
        var d = policy.CheckDestination(H("intranet.example"), IPAddress.Parse("10.1.2.3"));
        Assert.False(d.Allowed);
        Assert.Contains("RFC 1918", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void AllowAndDisallowChangeTheListAtRuntime()
    {
        var policy = new NetworkPolicy(intercept: true);
        Assert.Equal(["a.com", "*.b.com"], policy.Allow(["a.com,*.B.com"]));
        Assert.True(policy.IsHostAllowed(H("x.b.com")).Allowed);
        Assert.Equal(["a.com"], policy.Disallow(["*.b.com"]));
        Assert.False(policy.IsHostAllowed(H("x.b.com")).Allowed);
    }

    [Fact]
    public void FromFlagsTurnsInterceptionOnAndJoinsSecretHosts()
    {
        var secret = SecretSpec.Parse("TOKEN=v@api.test");
        var policy = NetworkPolicy.FromFlags([], [secret]);
        Assert.True(policy.Intercept);
        Assert.Equal(["api.test"], policy.AllowList);
        Assert.False(NetworkPolicy.FromFlags([]).Intercept);
        Assert.True(NetworkPolicy.FromFlags([], networkIntercept: true).Intercept);
    }

    [Theory]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("10.0.0.1", "RFC 1918")]
    [InlineData("172.20.0.1", "RFC 1918")]
    [InlineData("192.168.1.1", "RFC 1918")]
    [InlineData("100.64.0.1", "carrier-grade NAT")]
    [InlineData("169.254.169.254", "metadata")]
    [InlineData("169.254.1.1", "link-local")]
    [InlineData("0.0.0.0", "unspecified")]
    [InlineData("224.0.0.1", "multicast")]
    [InlineData("::1", "loopback")]
    [InlineData("::", "unspecified")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("fd00::1", "unique local")]
    [InlineData("ff02::1", "multicast")]
    [InlineData("::ffff:169.254.169.254", "metadata")]
    [InlineData("::ffff:10.0.0.1", "RFC 1918")]
    [InlineData("64:ff9b::a9fe:a9fe", "NAT64")]
    public void NonPublicAddressesAreRefusedWithTheirRange(string address, string fragment)
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("*")]);
        var ip = IPAddress.Parse(address);
        policy.Pin(H("x.test"), [ip]);
        var d = policy.CheckDestination(H("x.test"), ip);
        Assert.False(d.Allowed);
        Assert.Contains(fragment, d.Reason, StringComparison.Ordinal);
        Assert.False(policy.CheckDestination(HostName.FromAddress(ip), ip).Allowed);
    }

    [Fact]
    public void AddHostMakesLoopbackLegalForThatNameOnly()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("*")]);
        policy.AddHost(H("db.test"), IPAddress.Loopback);
        Assert.True(policy.CheckDestination(H("db.test"), IPAddress.Loopback).Allowed);
        Assert.True(policy.CheckDestination(H("db.test"), IPAddress.Parse("::ffff:127.0.0.1")).Allowed);
        Assert.False(policy.CheckDestination(H("other.test"), IPAddress.Loopback).Allowed);
    }

    [Fact]
    public void AllowPrivateStillRequiresPinning()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("*")], allowPrivate: true);
        policy.Pin(H("api.test"), [IPAddress.Parse("10.0.0.2")]);
        Assert.True(policy.CheckDestination(H("api.test"), IPAddress.Parse("10.0.0.2")).Allowed);
        var d = policy.CheckDestination(H("api.test"), IPAddress.Parse("10.0.0.3"));
        Assert.False(d.Allowed);
        Assert.Contains("resolves to 10.0.0.2", d.Reason, StringComparison.Ordinal);
        Assert.Contains("not resolved", policy.CheckDestination(H("never.test"), IPAddress.Parse("10.0.0.3")).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void RawTcpNeedsAnExplicitRuleForTheNameAndPort()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("ok.test"), HostPattern.Parse("git.test")], allowPrivate: true, [TcpRule.Parse("git.test:22")]);
        policy.Pin(H("ok.test"), [IPAddress.Parse("10.0.0.5")]);
        policy.Pin(H("git.test"), [IPAddress.Parse("10.0.0.9")]);
        var allowed = policy.CheckRawTcp(IPAddress.Parse("10.0.0.9"), 22, out var names);
        Assert.True(allowed.Allowed, allowed.Reason);
        Assert.Equal("git.test", names);

        // The allow-list (HTTP/TLS) does not allow raw TCP; the rule is for one port only; unknown addresses get nothing.
        var http = policy.CheckRawTcp(IPAddress.Parse("10.0.0.5"), 22, out _);
        Assert.False(http.Allowed);
        Assert.Contains("--allow-tcp ok.test:22", http.Reason, StringComparison.Ordinal);
        Assert.False(policy.CheckRawTcp(IPAddress.Parse("10.0.0.9"), 2222, out _).Allowed);
        Assert.False(policy.CheckRawTcp(IPAddress.Parse("10.0.0.7"), 22, out _).Allowed);
    }

    [Fact]
    public void RawTcpToAnAddressSharedWithAnotherNameIsRefused()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("*.test")], allowPrivate: false, [TcpRule.Parse("git.test:22")]);
        policy.AddHost(H("git.test"), IPAddress.Loopback);
        Assert.True(policy.CheckRawTcp(IPAddress.Loopback, 22, out _).Allowed);
        policy.AddHost(H("forbidden.test"), IPAddress.Loopback);
        var shared = policy.CheckRawTcp(IPAddress.Loopback, 22, out var names);
        Assert.False(shared.Allowed);
        Assert.Equal("forbidden.test, git.test", names);
        Assert.Contains("several names", shared.Reason, StringComparison.Ordinal);

        // Both names covered: whichever was meant, it is allowed.
        var both = new NetworkPolicy(intercept: true, [], allowPrivate: false, [TcpRule.Parse("*.test:22")]);
        both.AddHost(H("a.test"), IPAddress.Loopback);
        both.AddHost(H("b.test"), IPAddress.Loopback);
        Assert.True(both.CheckRawTcp(IPAddress.Loopback, 22, out _).Allowed);
    }

    [Fact]
    public void PinsAreBoundedByNameCountOldestForgottenFirst()
    {
        var policy = new NetworkPolicy(intercept: true, [HostPattern.Parse("*")]);
        for (var i = 0; i <= NetworkPolicy.MaxPinnedNames; i++)
        {
            policy.Pin(H($"n{i}.test"), [IPAddress.Parse("93.184.216.34")]);
        }

        Assert.False(policy.CheckDestination(H("n0.test"), IPAddress.Parse("93.184.216.34")).Allowed);
        Assert.True(policy.CheckDestination(H("n1.test"), IPAddress.Parse("93.184.216.34")).Allowed);
        Assert.True(policy.CheckDestination(H($"n{NetworkPolicy.MaxPinnedNames}.test"), IPAddress.Parse("93.184.216.34")).Allowed);
    }

    [Fact]
    public void RawTcpRulesMakeTheirNamesResolvableAndTurnInterceptionOn()
    {
        var policy = NetworkPolicy.FromFlags([], allowTcp: [TcpRule.Parse("git.test:22")]);
        Assert.True(policy.Intercept);
        Assert.True(policy.MayResolve(H("git.test")));
        Assert.False(policy.IsHostAllowed(H("git.test")).Allowed);
        Assert.False(policy.MayResolve(H("other.test")));
        Assert.Equal(["git.test:22"], policy.TcpRules);
    }

    [Theory]
    [InlineData("github.com:22", "github.com:22")]
    [InlineData("*.Example.COM:2222", "*.example.com:2222")]
    [InlineData("[::1]:22", "[::1]:22")]
    [InlineData("203.0.113.5:22", "203.0.113.5:22")]
    public void TcpRulesParse(string text, string canonical) => Assert.Equal(canonical, TcpRule.Parse(text).ToString());

    [Theory]
    [InlineData("github.com")]
    [InlineData("github.com:")]
    [InlineData(":22")]
    [InlineData("github.com:0")]
    [InlineData("github.com:65536")]
    [InlineData("github.com:ssh")]
    [InlineData("bad host:22")]
    [InlineData("::1:22")]
    public void BadTcpRulesAreRefusedWithTheExpectedForm(string text)
    {
        var e = Assert.Throws<FormatException>(() => TcpRule.Parse(text));
        Assert.Contains("--allow-tcp", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RawTcpWithoutInterceptionGoesToPublicAddressesOnly()
    {
        var policy = new NetworkPolicy(intercept: false);
        Assert.True(policy.CheckRawTcp(IPAddress.Parse("93.184.216.34"), 25, out _).Allowed);
        Assert.False(policy.CheckRawTcp(IPAddress.Parse("10.0.0.7"), 25, out _).Allowed);
        Assert.False(policy.CheckRawTcp(IPAddress.Parse("169.254.169.254"), 80, out _).Allowed);
    }

    [Fact]
    public void SecretHostsMayAllowCleartextExplicitly()
    {
        var spec = SecretSpec.Parse("K=v@api.test,http://plain.test,https://tls.test");
        Assert.Equal(["api.test", "plain.test", "tls.test"], spec.Hosts.Select(h => h.Value));
        Assert.True(spec.AllowsCleartext(H("plain.test")));
        Assert.False(spec.AllowsCleartext(H("api.test")));
        Assert.False(spec.AllowsCleartext(H("tls.test")));
        Assert.Equal("K@api.test,http://plain.test,tls.test", spec.ToString());
    }

    [Fact]
    public void PlaceholdersAreFoundInsideBasicCredentialsAndSubstitutedThere()
    {
        var secrets = SandboxSecrets.Create([SecretSpec.Parse("K=s3cret@api.test")]);
        var placeholder = secrets.GuestEnvironment["K"];
        var padded = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("user:" + placeholder));
        var unpadded = padded.TrimEnd('=');
        foreach (var value in new[] { padded, unpadded, "basic " + padded[6..] })
        {
            var found = new HashSet<SandboxSecrets.Entry>();
            secrets.FindPlaceholdersInHeader("Authorization", value, found);
            Assert.Equal("K", Assert.Single(found).Name);
        }

        var replaced = SandboxSecrets.SubstituteHeader("Authorization", padded, secrets.Entries);
        Assert.Equal("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("user:s3cret")), replaced);
        Assert.False(SandboxSecrets.SubstituteHeader("Proxy-Authorization", unpadded, secrets.Entries).EndsWith('='));
        Assert.Equal(padded, SandboxSecrets.SubstituteHeader("X-Other", padded, secrets.Entries));

        var inName = new HashSet<SandboxSecrets.Entry>();
        secrets.FindPlaceholdersInHeader("X-" + placeholder, "v", inName);
        Assert.Single(inName);
    }

    [Fact]
    public void SecretParsesValueFromArgumentOrEnvironment()
    {
        var a = SecretSpec.Parse("API_KEY=s3cr@t@api.test,*.api.test");
        Assert.Equal("s3cr@t", a.Value);
        Assert.Equal(["api.test", "*.api.test"], a.Hosts.Select(h => h.Value));
        var b = SecretSpec.Parse("API_KEY@api.test", n => n == "API_KEY" ? "from-env" : null);
        Assert.Equal("from-env", b.Value);
        var missing = Assert.Throws<FormatException>(() => SecretSpec.Parse("NOPE@api.test", _ => null));
        Assert.Contains("environment variable NOPE is not set", missing.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => SecretSpec.Parse("API_KEY=x"));
        Assert.DoesNotContain("s3cr@t", a.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void PlaceholdersArePerSecretAndWellFormed()
    {
        var secrets = SandboxSecrets.Create([SecretSpec.Parse("A=1@a.test"), SecretSpec.Parse("B=2@b.test")]);
        var env = secrets.GuestEnvironment;
        Assert.Matches("^SANDBOX_SECRET_[0-9a-f]{32}$", env["A"]);
        Assert.NotEqual(env["A"], env["B"]);
        var found = new HashSet<SandboxSecrets.Entry>();
        secrets.FindPlaceholders($"Bearer {env["B"]} and SANDBOX_SECRET_notours", found);
        Assert.Equal("B", Assert.Single(found).Name);
        Assert.DoesNotContain("=2", secrets.Entries[1].ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_chosen_placeholder_is_the_guests_and_is_found_and_replaced_like_ours()
    {
        var secrets = SandboxSecrets.Create(
            [SecretSpec.Parse("A=value-a@a.test"), SecretSpec.Parse("B=value-b@b.test")],
            new Dictionary<string, string> { ["A"] = "my-token-placeholder" });
        Assert.Equal("my-token-placeholder", secrets.GuestEnvironment["A"]);
        Assert.Matches("^SANDBOX_SECRET_[0-9a-f]{32}$", secrets.GuestEnvironment["B"]);

        var found = new HashSet<SandboxSecrets.Entry>();
        secrets.FindPlaceholders($"x=my-token-placeholder&y={secrets.GuestEnvironment["B"]}", found);
        Assert.Equal(["A", "B"], found.Select(e => e.Name).Order());
        var basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("u:my-token-placeholder"));
        var inBasic = new HashSet<SandboxSecrets.Entry>();
        secrets.FindPlaceholdersInHeader("Authorization", basic, inBasic);
        Assert.Equal("A", Assert.Single(inBasic).Name);
        Assert.Equal("Bearer value-a", SandboxSecrets.SubstituteHeader("Authorization", "Bearer my-token-placeholder", secrets.Entries));
    }

    [Theory]
    [InlineData("short", "at least 8")]
    [InlineData("has space in it", "without spaces")]
    [InlineData("xx-value-a-xx", "contains the secret's value")]
    public void A_chosen_placeholder_that_would_leak_or_match_by_accident_is_refused(string placeholder, string why)
    {
        var error = Assert.Throws<ArgumentException>(() => SandboxSecrets.Create([SecretSpec.Parse("A=value-a@a.test")], new Dictionary<string, string> { ["A"] = placeholder }));
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("value-a", error.Message.Replace("secret's value", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public void Overlapping_chosen_placeholders_are_refused_and_an_unknown_secret_name_is_a_usage_error()
    {
        var overlap = Assert.Throws<ArgumentException>(() => SandboxSecrets.Create(
            [SecretSpec.Parse("A=value-one@a.test"), SecretSpec.Parse("B=value-two@b.test")],
            new Dictionary<string, string> { ["A"] = "placeholder-1", ["B"] = "placeholder-10" }));
        Assert.Contains("overlap", overlap.Message, StringComparison.Ordinal);

        var spec = new Matchlock.Core.Network.SandboxNetworkSpec { Secrets = ["A=1@a.test"], SecretPlaceholders = new Dictionary<string, string> { ["NOPE"] = "placeholder-x" } };
        Assert.Contains("NOPE", Assert.Throws<ArgumentException>(spec.Validate).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HookPathIsPrefixWithoutStarAndGlobWithIt()
    {
        Assert.True(HookRule.PathMatches("/v1", "/v1/chat"));
        Assert.True(HookRule.PathMatches("/v1", "/v1"));
        Assert.False(HookRule.PathMatches("/v1", "/v10"));
        Assert.True(HookRule.PathMatches("/v1/*/stream", "/v1/abc/def/stream"));
        Assert.False(HookRule.PathMatches("/v1/*/stream", "/v1/abc/streams"));
    }

    [Fact]
    public void BodyRewriterReplacesBytes()
    {
        var rewriter = new BodyRewriter([new BodyReplacement("cat", "dog"), new BodyReplacement("dog", "bird")]);
        Assert.Equal("bird bird", Encoding.UTF8.GetString(rewriter.Apply("cat dog"u8)));
    }

    [Theory]
    [InlineData("\u0016\u0003\u0001", "Tls")]
    [InlineData("GET / HTTP/1.1\r\n", "Http")]
    [InlineData("get / HTTP/1.1\r\n", "Http")] // a token: Kestrel parses it and the policy applies
    [InlineData("PROPFIND /a?b=c HTTP/1.0\r\n", "Http")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "Http")]
    [InlineData("GET / HTTP/1.1", null)]
    [InlineData("GE", null)]
    [InlineData("PRI * HTTP/2.0\r\n", null)]
    [InlineData("\r\nGET / HTTP/1.1\r\n", "Raw")]
    [InlineData(" GET / HTTP/1.1\r\n", "Raw")]
    [InlineData("GET\t/ HTTP/1.1\r\n", "Raw")]
    [InlineData("GET /\tHTTP/1.1\r\n", "Raw")]
    [InlineData("GET  / HTTP/1.1\r\n", "Raw")]
    [InlineData("GET / HTTP/1.1\n", "Raw")]
    [InlineData("GET / HTTP/2.0\r\n", "Raw")]
    [InlineData("GET / http/1.1\r\n", "Raw")]
    [InlineData("GET / HTTP/1.1 \r\n", "Raw")]
    [InlineData("GET /a\u0000b HTTP/1.1\r\n", "Raw")]
    [InlineData("SSH-2.0-OpenSSH_9.2\r\n", "Raw")]
    [InlineData("hi", null)]
    [InlineData("hi\n", "Raw")]
    public void SnifferAcceptsOnlyStrictRequestLinesAndTls(string bytes, string? expected) =>
        Assert.Equal(expected, ProtocolSniffer.Classify(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(bytes)))?.ToString());

    [Fact]
    public void SnifferGivesUpOnOverlongRequestLines()
    {
        var line = "GET /" + new string('a', ProtocolSniffer.MaxRequestLineLength + 10);
        Assert.Equal("Raw", ProtocolSniffer.Classify(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(line)))?.ToString());
        Assert.Null(ProtocolSniffer.Classify(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(line[..4000]))));
    }
}
