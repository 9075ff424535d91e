namespace Matchlock.Core.Owner;

/// <summary>
/// No owner answers for that VM id: it never existed, it was killed, or its owner died. The
/// caller can only pick another id (see the VMs directory) or start a new sandbox.
/// </summary>
public sealed class OwnerUnavailableException(string message, Exception? inner = null) : SandboxGoneException(message, inner);

/// <summary>The owner answered with something that is not the control protocol (a different matchlock version?).</summary>
public sealed class OwnerProtocolException(string message, Exception? inner = null) : SandboxGoneException(message, inner);

/// <summary>The owner refused the request (bad host pattern, exec failed to start); the sandbox is still usable.</summary>
public sealed class OwnerOperationException(string message) : OperationFailedException(message);
