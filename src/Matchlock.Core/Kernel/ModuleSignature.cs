using System.Buffers.Binary;

namespace Matchlock.Core.Kernel;

/// <summary>
/// Removes the appended signature from a kernel module. Debian signs its modules (RSA, SHA-256);
/// the guest kernel does not enforce signatures (CONFIG_MODULE_SIG_FORCE unset), but it still
/// verifies any it finds, and under TCG that hash-and-RSA check dominated module loading.
/// An unsigned module loads and marks the throwaway guest kernel tainted, nothing more.
/// </summary>
/// <remarks>
/// Layout (scripts/sign-file.c, include/linux/module_signature.h): module bytes, signature
/// bytes, a 12-byte <c>struct module_signature</c> whose last field is the big-endian signature
/// length, then the 28-byte marker "~Module signature appended~\n".
/// </remarks>
internal static class ModuleSignature
{
    private const int InfoSize = 12;
    private static readonly byte[] Marker = "~Module signature appended~\n"u8.ToArray();

    /// <summary>The module without its signature; the input itself when it carries none.</summary>
    public static ReadOnlyMemory<byte> Strip(byte[] module)
    {
        if (module.Length < Marker.Length + InfoSize || !module.AsSpan(module.Length - Marker.Length).SequenceEqual(Marker))
        {
            return module;
        }

        var infoStart = module.Length - Marker.Length - InfoSize;
        var signatureLength = BinaryPrimitives.ReadUInt32BigEndian(module.AsSpan(infoStart + InfoSize - 4, 4));
        if (signatureLength > infoStart)
        {
            throw new ModuleResolutionException($"module signature length {signatureLength} exceeds the module ({module.Length} bytes): the file is damaged");
        }

        return module.AsMemory(0, infoStart - (int)signatureLength);
    }
}
