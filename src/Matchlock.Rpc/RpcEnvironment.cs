using Matchlock.Core.Images;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Rpc;

/// <summary>What <c>matchlock rpc</c> is given by the CLI: where sandboxes live and how an image is obtained.</summary>
public sealed record RpcEnvironment
{
    public required SandboxEnvironment Sandboxes { get; init; }

    /// <summary>The image for a reference: the stored one, or pulled (the CLI's registry client and credentials).</summary>
    public required Func<string, CancellationToken, Task<ImageRecord>> EnsureImage { get; init; }

    /// <summary>How long a guest may take to become ready (<c>MATCHLOCK_BOOT_TIMEOUT</c>).</summary>
    public TimeSpan? BootTimeout { get; init; }
}
