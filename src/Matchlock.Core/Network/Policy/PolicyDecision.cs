namespace Matchlock.Core.Network.Policy;

/// <summary>
/// The outcome of one policy check. A denial is a value, not an exception (it is the hot path), and
/// its <see cref="Reason"/> is written for the agent that made the request: it ends up in the 403
/// body and in the event log, so it names what was blocked and why, and never contains a secret.
/// </summary>
public readonly record struct PolicyDecision(bool Allowed, string Reason)
{
    public static PolicyDecision Allow(string reason) => new(true, reason);

    public static PolicyDecision Deny(string reason) => new(false, reason);
}
