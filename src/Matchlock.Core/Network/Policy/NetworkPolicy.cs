using System.Net;

namespace Matchlock.Core.Network.Policy;

/// <summary>
/// The sandbox's egress policy, in one place (docs/ARCHITECTURE.md D8): which host names may be reached, which
/// addresses a name may be connected to, and which addresses are off-limits. Shared by the egress
/// proxy (every request and connection) and the DNS responder (which pins what it answers).
/// Thread-safe: the allow-list changes at runtime (<c>allow-list add|delete</c>) while requests run.
/// </summary>
/// <remarks>
/// <para>
/// <b>Interception.</b> With <see cref="Intercept"/> on, a host must match an allow-list entry and an
/// empty list allows nothing (ours; the original allowed everything). With it off, every name is
/// allowed, but the address checks still apply: private, loopback, link-local, metadata and the other
/// ranges <see cref="AddressClassifier"/> names are refused unless <see cref="AllowPrivate"/> or an
/// <see cref="AddHost"/> mapping makes them legal for that name.
/// </para>
/// <para>
/// <b>Pinning.</b> The proxy never resolves a name itself. It connects to an address the guest was
/// given for that name: one our DNS responder answered (<see cref="Pin"/>) or an
/// <see cref="AddHost"/> mapping. So a name cannot be re-resolved to another address between the
/// guest's lookup and our connect (DNS rebinding), and a guest cannot pair an allowed Host header with
/// an address of its choosing. Pins are kept for the sandbox's lifetime, at most
/// <see cref="MaxPinsPerName"/> addresses per name (oldest dropped).
/// </para>
/// </remarks>
public sealed class NetworkPolicy
{
    /// <summary>Upper bound on remembered addresses per name, so a guest cannot grow our memory without bound.</summary>
    public const int MaxPinsPerName = 64;

    /// <summary>
    /// Upper bound on names with pins. Under a broad allow-list (<c>*</c>) a guest could resolve
    /// millions of names; past this the oldest name is forgotten (its next connection needs a new
    /// lookup), which keeps the owner's memory and every address lookup bounded.
    /// </summary>
    public const int MaxPinnedNames = 4096;

    // Guards _allow, _pins and _addHosts. Held only for dictionary/list operations, never across I/O.
    private readonly Lock _gate = new();
    private readonly List<HostPattern> _allow = [];
    private readonly List<TcpRule> _tcp = [];
    private readonly Dictionary<HostName, List<IPAddress>> _pins = [];
    private readonly Queue<HostName> _pinOrder = new();
    private readonly Dictionary<HostName, List<IPAddress>> _addHosts = [];

    // Guest-visible stand-ins for add-host loopback addresses (see AddHost), and what they stand for.
    private readonly Dictionary<IPAddress, IPAddress> _aliases = [];

    public NetworkPolicy(bool intercept, IEnumerable<HostPattern>? allow = null, bool allowPrivate = false, IEnumerable<TcpRule>? allowTcp = null)
    {
        Intercept = intercept;
        AllowPrivate = allowPrivate;
        if (allow is not null)
        {
            foreach (var pattern in allow)
            {
                AddPattern(pattern);
            }
        }

        foreach (var rule in allowTcp ?? [])
        {
            if (!_tcp.Contains(rule))
            {
                _tcp.Add(rule);
            }
        }
    }

    /// <summary>
    /// The policy for a sandbox's flags: interception is on with any allow-list entry, secret, hook
    /// rule, raw TCP rule or <c>--network-intercept</c>; a secret's hosts join the allow-list.
    /// </summary>
    public static NetworkPolicy FromFlags(
        IEnumerable<string> allowHosts,
        IEnumerable<SecretSpec>? secrets = null,
        bool hasHooks = false,
        bool networkIntercept = false,
        IEnumerable<KeyValuePair<HostName, IPAddress>>? addHosts = null,
        bool allowPrivate = false,
        IEnumerable<TcpRule>? allowTcp = null)
    {
        var patterns = HostPattern.ParseList(allowHosts).ToList();
        var secretList = secrets?.ToList() ?? [];
        var tcpRules = allowTcp?.ToList() ?? [];
        patterns.AddRange(secretList.SelectMany(s => s.Hosts));
        var intercept = patterns.Count > 0 || secretList.Count > 0 || hasHooks || networkIntercept || tcpRules.Count > 0;
        var policy = new NetworkPolicy(intercept, patterns, allowPrivate, tcpRules);
        foreach (var (name, address) in addHosts ?? [])
        {
            policy.AddHost(name, address);
        }

        return policy;
    }

    /// <summary>Whether requests are intercepted and held to the allow-list (see remarks).</summary>
    public bool Intercept { get; }

    /// <summary>When set, non-public destination addresses are allowed (still subject to pinning).</summary>
    public bool AllowPrivate { get; }

    /// <summary>The current allow-list, canonical pattern text, in insertion order.</summary>
    public IReadOnlyList<string> AllowList
    {
        get
        {
            lock (_gate)
            {
                return _allow.Select(p => p.Value).ToList();
            }
        }
    }

    /// <summary>The raw TCP rules (<c>--allow-tcp</c>), canonical <c>host:port</c> text.</summary>
    public IReadOnlyList<string> TcpRules
    {
        get
        {
            lock (_gate)
            {
                return _tcp.Select(r => r.ToString()).ToList();
            }
        }
    }

    /// <summary>
    /// Whether the sandbox's DNS may answer (and pin) <paramref name="host"/>: it is allowed for
    /// HTTP/TLS, or a raw TCP rule names it (ssh to a host that is not on the allow-list still needs
    /// its address).
    /// </summary>
    public bool MayResolve(HostName host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (IsHostAllowed(host).Allowed)
        {
            return true;
        }

        lock (_gate)
        {
            return _tcp.Any(r => r.Host.Matches(host));
        }
    }

    /// <summary>Adds patterns (comma lists accepted); returns the list after the change.</summary>
    /// <exception cref="FormatException">A pattern is invalid; nothing was added.</exception>
    public IReadOnlyList<string> Allow(IEnumerable<string> patterns)
    {
        var parsed = HostPattern.ParseList(patterns);
        lock (_gate)
        {
            foreach (var p in parsed)
            {
                AddPattern(p);
            }

            return _allow.Select(p => p.Value).ToList();
        }
    }

    /// <summary>Removes patterns (exact canonical match); returns the list after the change.</summary>
    public IReadOnlyList<string> Disallow(IEnumerable<string> patterns)
    {
        var parsed = HostPattern.ParseList(patterns);
        lock (_gate)
        {
            _allow.RemoveAll(parsed.Contains);
            return _allow.Select(p => p.Value).ToList();
        }
    }

    /// <summary>
    /// A static mapping (<c>--add-host name:ip</c>). The guest's resolver answers it, and it makes
    /// this address legal for this name even when it is private or loopback.
    /// </summary>
    /// <remarks>
    /// A loopback address cannot be given to the guest as is (there it means the guest itself), so
    /// the guest gets a stand-in from 198.18.0.0/15 (RFC 2544, never routed) that leaves through
    /// its NIC to our proxy, which dials the real address (<see cref="UpstreamAddress"/>). That is
    /// how a sandbox reaches a service on the host's loopback — only when mapped explicitly.
    /// </remarks>
    public void AddHost(HostName name, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(address);
        address = Normalize(address);
        lock (_gate)
        {
            if (IPAddress.IsLoopback(address))
            {
                var existing = _aliases.FirstOrDefault(kv => kv.Value.Equals(address)).Key;
                var n = _aliases.Count + 1;
                var alias = existing ?? new IPAddress([198, 18, (byte)(n >> 8), (byte)(n & 0xff)]);
                _aliases[alias] = address;
                address = alias;
            }

            AddAddress(_addHosts, name, address);
        }
    }

    /// <summary>The address to dial for a guest-visible one: the real loopback address behind an add-host stand-in, else the same.</summary>
    public IPAddress UpstreamAddress(IPAddress guestAddress)
    {
        ArgumentNullException.ThrowIfNull(guestAddress);
        var normalized = Normalize(guestAddress);
        lock (_gate)
        {
            return _aliases.TryGetValue(normalized, out var real) ? real : guestAddress;
        }
    }

    /// <summary>Records addresses the DNS responder gave the guest for a name.</summary>
    public void Pin(HostName name, IEnumerable<IPAddress> addresses)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(addresses);
        lock (_gate)
        {
            var list = addresses.Select(Normalize).ToList();
            if (list.Count == 0)
            {
                return;
            }

            if (!_pins.ContainsKey(name))
            {
                while (_pins.Count >= MaxPinnedNames && _pinOrder.TryDequeue(out var oldest))
                {
                    _pins.Remove(oldest);
                }

                _pinOrder.Enqueue(name);
            }

            foreach (var address in list)
            {
                AddAddress(_pins, name, address);
            }
        }
    }

    /// <summary>The <see cref="AddHost"/> addresses for a name (empty when none); the DNS responder answers these.</summary>
    public IReadOnlyList<IPAddress> StaticAddresses(HostName name)
    {
        lock (_gate)
        {
            return _addHosts.TryGetValue(name, out var list) ? list.ToList() : [];
        }
    }

    /// <summary>Whether requests to this host are allowed at all (before any address is considered).</summary>
    public PolicyDecision IsHostAllowed(HostName host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!Intercept)
        {
            return PolicyDecision.Allow("interception is off: every host is allowed");
        }

        lock (_gate)
        {
            foreach (var pattern in _allow)
            {
                if (pattern.Matches(host))
                {
                    return PolicyDecision.Allow($"{host} matches allow-list entry '{pattern.Value}'");
                }
            }

            return _allow.Count == 0
                ? PolicyDecision.Deny($"{host} is not allowed: the sandbox's allow-list is empty (add it with --allow-host or `matchlock allow-list add`)")
                : PolicyDecision.Deny($"{host} is not in the sandbox's allow-list ({string.Join(", ", _allow.Select(p => p.Value))})");
        }
    }

    /// <summary>
    /// Whether a connection for <paramref name="host"/> may go to <paramref name="address"/>: the
    /// address must be one the guest was given for that name (pin or add-host; for an IP-literal host,
    /// the literal itself), and must be public unless add-host mapped or <see cref="AllowPrivate"/>.
    /// </summary>
    public PolicyDecision CheckDestination(HostName host, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(address);
        address = Normalize(address);
        bool mapped;
        lock (_gate)
        {
            // The stand-in of a loopback mapping, or (only reachable from the host side) the real address.
            mapped = _addHosts.TryGetValue(host, out var statics) && MapsToLocked(statics, address);
            if (!mapped)
            {
                if (host.IsIPAddress)
                {
                    if (!Normalize(host.Address).Equals(address))
                    {
                        return PolicyDecision.Deny($"the request names {host} but the connection went to {address}");
                    }
                }
                else if (!(_pins.TryGetValue(host, out var pinned) && pinned.Contains(address)))
                {
                    return _pins.ContainsKey(host) || _addHosts.ContainsKey(host)
                        ? PolicyDecision.Deny($"{host} resolves to {string.Join(", ", AddressesLocked(host))} in this sandbox, not {address}: connections go only to the addresses the sandbox's DNS gave out")
                        : PolicyDecision.Deny($"{host} was not resolved through the sandbox's DNS, so {address} is not a known address for it");
                }
            }
        }

        if (mapped)
        {
            return PolicyDecision.Allow($"{address} is mapped to {host} by --add-host");
        }

        var range = AddressClassifier.NonPublicRange(address);
        if (range is not null && !AllowPrivate)
        {
            return PolicyDecision.Deny($"{host} resolves to {address}, which is in {range}; sandboxes may not reach it (map it explicitly with --add-host to allow)");
        }

        return PolicyDecision.Allow($"{address} is an address the sandbox's DNS gave for {host}");
    }

    /// <summary>
    /// Whether raw TCP (neither TLS nor HTTP) may be relayed to <paramref name="destination"/> port
    /// <paramref name="port"/>. With interception off: to any public address (or an add-host one).
    /// With it on, only by an explicit <see cref="TcpRule"/>, and by name: the names this sandbox
    /// associated with the address (DNS answers it pinned, <c>--add-host</c> mappings, or the address
    /// itself as an IP literal) must ALL be covered by a rule for that port. An address shared by a
    /// name without a rule is refused, because the connection could be meant for that name — the
    /// address alone never decides (several names share one: CDNs, add-host stand-ins).
    /// Returns the name(s) the decision was made for, for events.
    /// </summary>
    public PolicyDecision CheckRawTcp(IPAddress destination, int port, out string? names)
    {
        ArgumentNullException.ThrowIfNull(destination);
        destination = Normalize(destination);
        names = null;
        var literal = HostName.FromAddress(destination);
        var candidates = new List<HostName>();
        bool mapped;
        lock (_gate)
        {
            foreach (var (host, list) in _addHosts)
            {
                if (MapsToLocked(list, destination))
                {
                    candidates.Add(host);
                }
            }

            mapped = candidates.Count > 0;
            foreach (var (host, list) in _pins)
            {
                if (list.Contains(destination) && !candidates.Contains(host))
                {
                    candidates.Add(host);
                }
            }

            if (candidates.Count > 0)
            {
                names = string.Join(", ", candidates.Select(c => c.Value).Order(StringComparer.Ordinal));
            }

            if (Intercept)
            {
                // An IP literal is a name of its own: a rule for 203.0.113.5:22 covers that address.
                var literalRule = _tcp.Any(r => r.Matches(literal, port));
                if (candidates.Count == 0 && !literalRule)
                {
                    return PolicyDecision.Deny(_tcp.Count == 0
                        ? $"raw TCP to {literal.UriHost}:{port} is not allowed: only HTTP and TLS pass this sandbox's proxy (allow raw TCP explicitly with --allow-tcp HOST:{port})"
                        : $"raw TCP to {literal.UriHost}:{port} is not allowed: the address was not given out by the sandbox's DNS for a host with an --allow-tcp rule");
                }

                var uncovered = literalRule ? [] : candidates.Where(c => !_tcp.Any(r => r.Matches(c, port))).Select(c => c.Value).Order(StringComparer.Ordinal).ToList();
                if (uncovered.Count > 0)
                {
                    return candidates.Count == 1
                        ? PolicyDecision.Deny($"raw TCP to {uncovered[0]}:{port} is not allowed: only HTTP and TLS pass this sandbox's proxy (allow it explicitly with --allow-tcp {uncovered[0]}:{port})")
                        : PolicyDecision.Deny($"raw TCP to {literal.UriHost}:{port} is refused: that address belongs to several names ({names}) and {string.Join(", ", uncovered)} has no --allow-tcp rule for port {port}, so the connection cannot be told apart from one to a host that is not allowed");
                }

                names = literalRule ? literal.Value : names;
            }
        }

        if (!mapped && !AllowPrivate && AddressClassifier.NonPublicRange(destination) is { } range)
        {
            return PolicyDecision.Deny($"raw TCP to {destination} is not allowed: it is in {range} (map it explicitly with --add-host to allow)");
        }

        return Intercept
            ? PolicyDecision.Allow($"--allow-tcp covers {names}:{port}")
            : PolicyDecision.Allow(mapped ? $"{destination} is mapped to {names} by --add-host" : $"interception is off and {destination} is public");
    }

    /// <summary>Whether an add-host list holds <paramref name="address"/>: as given to the guest, or as the real loopback address behind a stand-in. Caller holds <see cref="_gate"/>.</summary>
    private bool MapsToLocked(List<IPAddress> addresses, IPAddress address) =>
        addresses.Contains(address) || addresses.Any(a => _aliases.TryGetValue(a, out var real) && real.Equals(address));

    private void AddPattern(HostPattern pattern)
    {
        if (!_allow.Contains(pattern))
        {
            _allow.Add(pattern);
        }
    }

    private List<IPAddress> AddressesLocked(HostName host) =>
        (_addHosts.TryGetValue(host, out var a) ? a : []).Concat(_pins.TryGetValue(host, out var p) ? p : []).Distinct().ToList();

    private static void AddAddress(Dictionary<HostName, List<IPAddress>> map, HostName name, IPAddress address)
    {
        if (!map.TryGetValue(name, out var list))
        {
            map[name] = list = [];
        }

        if (list.Contains(address))
        {
            return;
        }

        if (list.Count >= MaxPinsPerName)
        {
            list.RemoveAt(0);
        }

        list.Add(address);
    }

    /// <summary>IPv4-mapped IPv6 compares as the IPv4 address; scope ids are dropped.</summary>
    private static IPAddress Normalize(IPAddress address) =>
        address.IsIPv4MappedToIPv6 ? address.MapToIPv4()
        : address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && address.ScopeId != 0 ? new IPAddress(address.GetAddressBytes())
        : address;
}
