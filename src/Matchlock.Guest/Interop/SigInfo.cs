using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>siginfo_t (128 bytes); for SIGCHLD the pid sits at offset 16.</summary>
[StructLayout(LayoutKind.Explicit, Size = 128)]
internal struct SigInfo
{
    [FieldOffset(0)] internal int Signo;
    [FieldOffset(8)] internal int Code;
    [FieldOffset(16)] internal int Pid;
    [FieldOffset(24)] internal int Status;
}
