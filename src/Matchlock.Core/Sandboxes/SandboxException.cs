namespace Matchlock.Core.Sandboxes;

/// <summary>The sandbox could not be created or has failed; it is gone (nothing left running).</summary>
public sealed class SandboxException : Exception
{
    public SandboxException(string message) : base(message)
    {
    }

    public SandboxException(string message, Exception? inner) : base(message, inner)
    {
    }
}
