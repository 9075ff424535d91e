using Matchlock.Protocol;
using Matchlock.Protocol.Messages;

namespace Matchlock.Core.Sandboxes;

/// <summary>
/// The one place where the host waits for the end of a guest stream (issue 11, part 5). Every
/// way that wait can end becomes an exception that says what happened, typed by what the
/// caller can still do:
/// <list type="bullet">
/// <item>the guest reset the stream, or sent a reply that is not ours → <see cref="GuestOperationException"/>:
/// that request is over, the sandbox and its other streams go on;</item>
/// <item>a bound was given and the guest stayed silent → the stream is reset (the guest stops
/// whatever it was doing for it) and <see cref="GuestOperationException"/> with <c>ETIMEDOUT</c>;</item>
/// <item>the link itself failed (VM gone, framing broken) → <see cref="SandboxGoneException"/>: nothing on it can continue.</item>
/// </list>
/// </summary>
internal static class GuestReplies
{
    /// <summary>Error code of a request the guest left unanswered past its bound.</summary>
    internal const string TimedOut = "ETIMEDOUT";

    /// <summary>Error code of a stream the guest reset.</summary>
    internal const string Reset = "ERESET";

    /// <summary>Error code of a reply that is not a protocol message.</summary>
    internal const string Malformed = "EPROTO";

    /// <param name="what">The request, as the user would name it ("exec", "configure"); starts the messages.</param>
    /// <param name="bound">How long the guest may take; null: as long as the stream lives
    /// (an exec runs as long as its command), still ended by a reset or the link's end.</param>
    internal static async Task<GuestReply> WaitAsync(MuxStream stream, string what, TimeSpan? bound, CancellationToken cancellationToken)
    {
        ReadOnlyMemory<byte> raw;
        try
        {
            raw = bound is { } limit
                ? await stream.Reply.WaitAsync(limit, cancellationToken)
                : await stream.Reply.WaitAsync(cancellationToken);
        }
        catch (TimeoutException)
        {
            // Abandon it on the guest's side too: a late answer would find nobody waiting.
            await stream.TryResetAsync($"no reply within {bound!.Value.TotalSeconds:0.#} s");
            throw new GuestOperationException(
                $"{what} got no answer from the guest within {bound.Value.TotalSeconds:0.#} s (overloaded or hung); abandoned", TimedOut);
        }
        catch (MuxStreamResetException ex)
        {
            throw new GuestOperationException($"{what} ended without a status: the guest reset its stream ({ex.Message})", Reset);
        }
        catch (MuxConnectionClosedException ex)
        {
            throw new SandboxGoneException($"{what} ended: the sandbox stopped or its channel to the guest failed ({ex.Message})", ex);
        }

        try
        {
            return ProtocolSerializer.ReadReply(raw);
        }
        catch (MuxProtocolException ex)
        {
            throw new GuestOperationException($"{what} ended with a reply from the guest that is not valid ({ex.Message})", Malformed);
        }
    }
}
