using System.Runtime.InteropServices;

namespace Matchlock.Core.Interop;

/// <summary>
/// The libc calls the vhost-user backend is built from (docs/VFS.md "vhost-user transport"):
/// shared guest memory (mmap/munmap), eventfds and poll for the queues' notifications, and
/// recvmsg/sendmsg for the descriptors QEMU passes with SCM_RIGHTS. Results are raw (a negative
/// return and the errno, read with <see cref="Marshal.GetLastPInvokeError"/>). Every pointer is to
/// a stack buffer or a pinned array that outlives the call.
/// </summary>
internal static unsafe partial class VhostNative
{
    public const int EINTR = 4;
    public const int EAGAIN = 11;

    public const short PollIn = 0x001;
    public const short PollErr = 0x008;
    public const short PollHup = 0x010;
    public const short PollNval = 0x020;

    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int MapSharedFlag = 1;
    private const int EfdCloexec = 0x80000;
    private const int EfdNonblock = 0x800;
    private const int SolSocket = 1;
    private const int ScmRights = 1;
    private const int MsgCtrunc = 0x8;
    private const int MsgNoSignal = 0x4000;
    private const int MsgCmsgCloexec = 0x40000000;
    private const uint MfdCloexec = 1;

    /// <summary>The most descriptors one vhost-user message may carry (the memory table's 8 regions).</summary>
    public const int MaxFds = 8;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    /// <summary>mmap(2) of <paramref name="length"/> bytes of <paramref name="fd"/> from offset 0, shared, read-write; null on failure.</summary>
    public static byte* MapShared(int fd, ulong length)
    {
        var p = mmap(null, (nuint)length, ProtRead | ProtWrite, MapSharedFlag, fd, 0);
        return p == (void*)-1 ? null : (byte*)p;
    }

    public static void Unmap(byte* address, ulong length) => _ = munmap(address, (nuint)length);

    /// <summary>A non-blocking, close-on-exec eventfd; -1 on failure.</summary>
    public static int EventFd() => eventfd(0, EfdCloexec | EfdNonblock);

    /// <summary>Adds one to an eventfd's counter (wakes its poller). Errors are ignored: a full counter still wakes.</summary>
    public static void Signal(int fd)
    {
        ulong one = 1;
        _ = write(fd, &one, 8);
    }

    /// <summary>Reads (and so resets) an eventfd's counter; false when nothing was there (or an error).</summary>
    public static bool Drain(int fd)
    {
        ulong value;
        return read(fd, &value, 8) == 8;
    }

    public static int Close(int fd) => close(fd);

    /// <summary>poll(2) on <paramref name="fds"/>; the number ready, 0 on timeout, -1 with errno.</summary>
    public static int Poll(Span<PollFd> fds, int timeoutMs)
    {
        fixed (PollFd* p = fds)
        {
            return poll(p, (nuint)fds.Length, timeoutMs);
        }
    }

    /// <summary>
    /// recvmsg(2) into <paramref name="buffer"/> with up to <see cref="MaxFds"/> SCM_RIGHTS
    /// descriptors (close-on-exec). Returns the bytes read (0 at end of stream, -1 with errno);
    /// <paramref name="truncated"/> when the kernel dropped descriptors that did not fit.
    /// </summary>
    public static int ReceiveWithFds(int socket, Span<byte> buffer, List<int> fds, out bool truncated)
    {
        const int ControlSize = 16 + (MaxFds * 4); // CMSG_SPACE(8 ints): a 16-byte header, 32 bytes of data
        var control = stackalloc byte[ControlSize + 16];
        truncated = false;
        fixed (byte* b = buffer)
        {
            var iov = new IoVec { Base = b, Length = (nuint)buffer.Length };
            var hdr = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlSize };
            var n = (int)recvmsg(socket, &hdr, MsgCmsgCloexec);
            if (n < 0)
            {
                return n;
            }

            // Walk the control messages the kernel filled in (at most ControlLength bytes).
            var offset = 0;
            while (offset + sizeof(CmsgHdr) <= (int)hdr.ControlLength)
            {
                var cmsg = (CmsgHdr*)(control + offset);
                var length = (int)cmsg->Length;
                if (length < sizeof(CmsgHdr) || offset + length > (int)hdr.ControlLength)
                {
                    break;
                }

                if (cmsg->Level == SolSocket && cmsg->Type == ScmRights)
                {
                    var count = (length - sizeof(CmsgHdr)) / 4;
                    var data = (int*)(control + offset + sizeof(CmsgHdr));
                    for (var i = 0; i < count; i++)
                    {
                        fds.Add(data[i]);
                    }
                }

                offset += (length + 7) & ~7;
            }

            truncated = (hdr.Flags & MsgCtrunc) != 0;
            return n;
        }
    }

    /// <summary>sendmsg(2) of <paramref name="buffer"/> with <paramref name="fds"/> as SCM_RIGHTS (none when empty); bytes sent or -1.</summary>
    public static int SendWithFds(int socket, ReadOnlySpan<byte> buffer, ReadOnlySpan<int> fds)
    {
        if (fds.Length > MaxFds)
        {
            throw new ArgumentOutOfRangeException(nameof(fds), fds.Length, $"at most {MaxFds} descriptors");
        }

        var control = stackalloc byte[16 + (MaxFds * 4)];
        fixed (byte* b = buffer)
        {
            var iov = new IoVec { Base = b, Length = (nuint)buffer.Length };
            var hdr = new MsgHdr { Iov = &iov, IovLength = 1 };
            if (fds.Length > 0)
            {
                var cmsg = (CmsgHdr*)control;
                cmsg->Length = (nuint)(sizeof(CmsgHdr) + (fds.Length * 4));
                cmsg->Level = SolSocket;
                cmsg->Type = ScmRights;
                var data = (int*)(control + sizeof(CmsgHdr));
                for (var i = 0; i < fds.Length; i++)
                {
                    data[i] = fds[i];
                }

                hdr.Control = control;
                hdr.ControlLength = (nuint)((sizeof(CmsgHdr) + (fds.Length * 4) + 7) & ~7);
            }

            return (int)sendmsg(socket, &hdr, MsgNoSignal);
        }
    }

    /// <summary>memfd_create(2) of <paramref name="size"/> bytes (tests' stand-in for guest RAM); -1 on failure.</summary>
    public static int MemFd(string name, long size)
    {
        var fd = memfd_create(name, MfdCloexec);
        if (fd >= 0 && ftruncate(fd, size) != 0)
        {
            _ = close(fd);
            return -1;
        }

        return fd;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int munmap(void* addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint nfds, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint recvmsg(int sockfd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint sendmsg(int sockfd, MsgHdr* msg, int flags);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ftruncate(int fd, long length);
}
