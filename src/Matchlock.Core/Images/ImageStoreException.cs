namespace Matchlock.Core.Images;

/// <summary>
/// The host cannot do the operation (a tool such as <c>mkfs.erofs</c> is missing or failed, the
/// store directory is not writable, import not run as root). The input may be fine: fix the host
/// and retry. The store is left unchanged.
/// </summary>
public sealed class ImageStoreException : SandboxStartException
{
    public ImageStoreException(string message)
        : base(message)
    {
    }

    public ImageStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
