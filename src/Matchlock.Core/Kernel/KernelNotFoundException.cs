namespace Matchlock.Core.Kernel;

/// <summary>
/// No usable guest kernel (or its modules directory) was found. The caller cannot start a VM until
/// the user installs one; the message says how.
/// </summary>
public sealed class KernelNotFoundException : SandboxStartException
{
    public KernelNotFoundException()
        : this("no guest kernel found in /boot (looked for vmlinuz-*-cloud-amd64); run ./setup.sh to install linux-image-cloud-amd64")
    {
    }

    public KernelNotFoundException(string message)
        : base(message)
    {
    }

    public KernelNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
