namespace Matchlock.Core.Images;

/// <summary>
/// The input (a <c>docker save</c> tarball, a layer or an image config) is malformed, corrupt,
/// truncated, or tries something unsafe (paths escaping the image root, device nodes). Retrying
/// with the same input fails the same way; the store is left unchanged.
/// </summary>
public sealed class ImageFormatException : SandboxStartException
{
    public ImageFormatException(string message)
        : base(message)
    {
    }

    public ImageFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
