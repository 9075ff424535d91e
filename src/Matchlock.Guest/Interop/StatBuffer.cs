using System.Runtime.InteropServices;

namespace Matchlock.Guest.Interop;

/// <summary>glibc x86-64 struct stat (144 bytes); only the fields we read are named.</summary>
[StructLayout(LayoutKind.Explicit, Size = 144)]
internal struct StatBuffer
{
    [FieldOffset(0)] internal ulong Device;
    [FieldOffset(8)] internal ulong Inode;
    [FieldOffset(24)] internal uint Mode;
    [FieldOffset(28)] internal uint Uid;
    [FieldOffset(32)] internal uint Gid;
    [FieldOffset(48)] internal long Size;
    [FieldOffset(88)] internal long ModifiedSeconds;
    [FieldOffset(96)] internal long ModifiedNanoseconds;
    [FieldOffset(104)] internal long ChangedSeconds;
    [FieldOffset(112)] internal long ChangedNanoseconds;
}
