namespace Matchlock.Core.Kernel;

/// <summary>
/// The requested kernel modules cannot be turned into a load list (unknown name, compressed
/// module, broken <c>modules.dep</c>). Fixing it needs a different kernel or module set.
/// </summary>
public sealed class ModuleResolutionException : SandboxStartException
{
    public ModuleResolutionException(string message)
        : base(message)
    {
    }

    public ModuleResolutionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
