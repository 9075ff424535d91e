namespace Matchlock.Core.Network.Dns;

/// <summary>What the responder did with one query.</summary>
internal enum DnsDecision
{
    /// <summary>Answered NOERROR (with addresses, or none: AAAA, or a name without IPv4 address).</summary>
    Answered,

    /// <summary>The policy does not allow the name (or it is no host name): NXDOMAIN, nothing asked upstream.</summary>
    Denied,

    /// <summary>A query type or class we never serve: REFUSED, never forwarded.</summary>
    Refused,

    /// <summary>An opcode other than QUERY: NOTIMP.</summary>
    NotImplemented,

    /// <summary>Resolution failed or timed out, or the pin could not be recorded: SERVFAIL.</summary>
    Failed,

    /// <summary>Not a well-formed single-question query: dropped, or FORMERR when its header parsed.</summary>
    Malformed,
}

/// <summary>
/// One decision of the responder, for the sandbox's event stream.
/// </summary>
/// <param name="Name">The canonical name, or the name as sent when it is no host name; empty when the packet did not parse.</param>
/// <param name="Type">The query type's mnemonic (<c>A</c>, <c>TXT</c>, …); empty when the packet did not parse.</param>
/// <param name="Decision">What was answered.</param>
/// <param name="Reason">Why, for people reading the log.</param>
internal readonly record struct DnsQueryEvent(string Name, string Type, DnsDecision Decision, string Reason);
