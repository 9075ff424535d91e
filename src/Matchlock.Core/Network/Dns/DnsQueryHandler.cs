using System.Net;
using System.Net.Sockets;
using Makaretu.Dns;

namespace Matchlock.Core.Network.Dns;

/// <summary>
/// Turns one query message into its reply, independent of the transport: the policy of the
/// responder lives here.
/// </summary>
/// <remarks>
/// The steps, in order (each stops at its answer):
/// <list type="number">
/// <item>Too long, unparseable, or a response rather than a query: dropped, nothing sent.</item>
/// <item>Opcode other than QUERY: NOTIMP. Not exactly one question (RFC 9619): FORMERR.</item>
/// <item>Class other than IN, or a type other than A and AAAA: REFUSED. REFUSED rather than
/// NOTIMP because we decline these by policy (RFC 1035 §4.1.1): TXT, MX, SRV, ANY, PTR… would be
/// data channels in and out of the sandbox, so they are never forwarded.</item>
/// <item>A name that cannot be a host name: NXDOMAIN.</item>
/// <item>An <c>--add-host</c> name: its addresses, no resolver asked.</item>
/// <item>A name the policy refuses: NXDOMAIN, before any resolver sees it.</item>
/// <item>AAAA: NOERROR without records. The guest has no IPv6; an empty answer makes clients
/// fall back to A at once instead of waiting for a timeout.</item>
/// <item>A: resolved (bounded by the timeout; SERVFAIL past it), pinned through
/// <c>OnAnswered</c>, then answered with the queried name itself as owner (no CNAME chain) and
/// the short TTL.</item>
/// </list>
/// Replies echo the question exactly as sent, so a client's 0x20 case randomisation matches.
/// Replies carry no OPT record; they always fit the 512 octets plain DNS allows over UDP.
/// </remarks>
internal sealed class DnsQueryHandler(DnsResponderOptions options)
{
    /// <summary>
    /// The largest query we read. A stub's query with one question and an OPT record is well under
    /// it. It is also a safety bound: Makaretu.Dns reads names recursively, one frame per label,
    /// without a length limit, so a 64 KiB TCP message of one-octet labels overflows the stack and
    /// ends the process; no packet longer than this reaches the parser.
    /// </summary>
    public const int MaxQueryLength = 512;

    /// <summary>At most this many addresses per answer, so every reply fits 512 octets.</summary>
    internal const int MaxAddresses = 8;

    private readonly Func<string, AddressFamily, CancellationToken, Task<IPAddress[]>> _resolve = options.Resolve ?? DnsResolvers.Host;

    /// <summary>
    /// The reply to <paramref name="packet"/>, or <see langword="null"/> when nothing should be sent.
    /// </summary>
    public async Task<byte[]?> HandleAsync(ReadOnlyMemory<byte> packet, CancellationToken cancellationToken)
    {
        if (packet.Length > MaxQueryLength || !TryParse(packet, out var query))
        {
            Report(string.Empty, string.Empty, DnsDecision.Malformed, $"unparseable packet of {packet.Length} bytes dropped");
            return null;
        }

        if (query.IsResponse)
        {
            // Answering a response could start a loop between two responders; say nothing.
            Report(string.Empty, string.Empty, DnsDecision.Malformed, "a response, not a query: dropped");
            return null;
        }

        if (query.Opcode != MessageOperation.Query)
        {
            Report(string.Empty, string.Empty, DnsDecision.NotImplemented, $"opcode {query.Opcode}");
            return Reply(query, MessageStatus.NotImplemented).ToByteArray();
        }

        if (query.Questions.Count != 1)
        {
            Report(string.Empty, string.Empty, DnsDecision.Malformed, $"{query.Questions.Count} questions");
            return Reply(query, MessageStatus.FormatError).ToByteArray();
        }

        var question = query.Questions[0];
        var type = question.Type.ToString();
        if (question.Class != DnsClass.IN || question.Type is not (DnsType.A or DnsType.AAAA))
        {
            Report(question.Name.ToString(), type, DnsDecision.Refused, $"class {question.Class} type {type} is not served");
            return Reply(query, MessageStatus.Refused).ToByteArray();
        }

        if (!DnsQueryName.TryCanonicalize(question.Name.Labels, out var name))
        {
            Report(question.Name.ToString(), type, DnsDecision.Denied, "not a host name");
            return Reply(query, MessageStatus.NameError).ToByteArray();
        }

        var fixedAddresses = options.StaticHosts?.Invoke(name);
        if (fixedAddresses is not null)
        {
            return Answer(query, question, name, type, question.Type == DnsType.A ? IPv4Only(fixedAddresses) : [], "--add-host");
        }

        if (!options.MayResolve(name))
        {
            Report(name, type, DnsDecision.Denied, "not allowed by the network policy");
            return Reply(query, MessageStatus.NameError).ToByteArray();
        }

        if (question.Type == DnsType.AAAA)
        {
            return Answer(query, question, name, type, [], "no IPv6 in the guest");
        }

        IPAddress[] resolved;
        using (var deadline = new CancellationTokenSource(options.ResolveTimeout, options.TimeProvider))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token))
        {
            try
            {
                // WaitAsync as well as the token: a resolver that ignores cancellation must not hold
                // the guest past the timeout (its late result is discarded).
                resolved = await _resolve(name, AddressFamily.InterNetwork, linked.Token).WaitAsync(linked.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                Report(name, type, DnsDecision.Failed, $"resolution timed out after {options.ResolveTimeout.TotalSeconds:0.#} s");
                return Reply(query, MessageStatus.ServerFailure).ToByteArray();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever the resolver throws (SocketException, a DNS client's error) is a failure
                // of this one name, which the guest sees as SERVFAIL and may retry.
                Report(name, type, DnsDecision.Failed, $"resolution failed: {e.Message}");
                return Reply(query, MessageStatus.ServerFailure).ToByteArray();
            }
        }

        return Answer(query, question, name, type, IPv4Only(resolved), "resolved");
    }

    private byte[] Answer(Message query, Question question, string name, string type, IPAddress[] addresses, string reason)
    {
        if (addresses.Length > 0)
        {
            try
            {
                options.OnAnswered?.Invoke(name, addresses);
            }
            catch (Exception e)
            {
                // Without its pin the proxy would refuse the connection anyway; an address the
                // guest cannot use is worse than an honest failure.
                Report(name, type, DnsDecision.Failed, $"recording the answer failed: {e.Message}");
                return Reply(query, MessageStatus.ServerFailure).ToByteArray();
            }
        }

        var reply = Reply(query, MessageStatus.NoError);
        foreach (var address in addresses)
        {
            // The owner is the question's own name object, so the answer repeats its case exactly.
            reply.Answers.Add(new ARecord { Name = question.Name, Address = address, TTL = options.AnswerTtl });
        }

        Report(name, type, DnsDecision.Answered, addresses.Length == 0 ? $"{reason}: no address" : $"{reason}: {string.Join(", ", addresses.Select(a => a.ToString()))}");
        return reply.ToByteArray();
    }

    private static IPAddress[] IPv4Only(IPAddress[] addresses) =>
        addresses.Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)
            .Where(a => a.AddressFamily == AddressFamily.InterNetwork)
            .Distinct()
            .Take(MaxAddresses)
            .ToArray();

    private static Message Reply(Message query, MessageStatus status)
    {
        // RA: we do recurse for the guest (through the policy); AA: we are nobody's authority.
        var reply = new Message { Id = query.Id, QR = true, Opcode = query.Opcode, RD = query.RD, RA = true, Status = status };
        reply.Questions.AddRange(query.Questions);
        return reply;
    }

    private static bool TryParse(ReadOnlyMemory<byte> packet, out Message query)
    {
        query = new Message();
        try
        {
            query.Read(packet.ToArray());
            return true;
        }
        catch (Exception)
        {
            // The library signals hostile input with whatever its reader hit (EndOfStream,
            // KeyNotFound for a forward compression pointer, InvalidData, ArgumentOutOfRange…); all
            // of them mean "not a query we answer", and the half-read message is discarded.
            return false;
        }
    }

    private void Report(string name, string type, DnsDecision decision, string reason) =>
        options.Events?.Invoke(new DnsQueryEvent(name, type, decision, reason));
}
