using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Matchlock.Guest.Interop;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// Gives the guest's NIC its static IPv4 setup (docs/ARCHITECTURE.md D7) with the classic socket ioctls
/// (netdevice(7), route(7) SIOCADDRT), because images cannot be assumed to have <c>ip</c> or
/// <c>ifconfig</c>: IPv6 off, MTU, address, netmask, up, default route via the gateway.
/// Acts on the network namespace of the calling thread (the socket's), which tests rely on.
/// </summary>
/// <remarks>Layouts are glibc x86-64, checked with a C program against Debian 12's headers:
/// struct ifreq is 40 bytes with the name in the first 16 and the union (sockaddr or int mtu) at
/// 16; struct rtentry is 120 bytes with rt_dst at 8, rt_gateway at 24, rt_genmask at 40,
/// rt_flags (u16) at 56 and rt_dev (char*) at 88.</remarks>
internal static class InterfaceConfigurator
{
    internal const string DefaultInterface = "eth0";

    private const int AF_INET = 2;
    private const int SOCK_DGRAM = 2;
    private const int SOCK_CLOEXEC = 0x80000;
    private const nuint SIOCADDRT = 0x890B;
    private const nuint SIOCGIFFLAGS = 0x8913;
    private const nuint SIOCSIFFLAGS = 0x8914;
    private const nuint SIOCSIFADDR = 0x8916;
    private const nuint SIOCSIFNETMASK = 0x891C;
    private const nuint SIOCSIFMTU = 0x8922;
    private const nuint SIOCGIFINDEX = 0x8933;
    private const short IFF_UP = 0x1;
    private const ushort RTF_UP = 0x1;
    private const ushort RTF_GATEWAY = 0x2;
    private const int IfreqSize = 40;
    private const int RtentrySize = 120;

    /// <summary>virtio_net registers the NIC while its module loads at boot; this only covers a slow probe.</summary>
    private static readonly TimeSpan AppearTimeout = TimeSpan.FromSeconds(3);

    internal static void Apply(GuestNetworkConfig config)
    {
        var name = string.IsNullOrEmpty(config.Interface) ? DefaultInterface : config.Interface;
        if (name.Length > 15 || name.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"interface name '{name}' is not valid");
        }

        var address = ParseIPv4(config.Address, "address");
        var gateway = ParseIPv4(config.Gateway, "gateway");
        if (config.PrefixLength is < 1 or > 30)
        {
            throw new ArgumentException($"prefix length {config.PrefixLength} is not between 1 and 30");
        }

        if (config.Mtu is < 576 or > 65535)
        {
            throw new ArgumentException($"MTU {config.Mtu} is not between 576 and 65535");
        }

        var mask = uint.MaxValue << (32 - config.PrefixLength);
        var fd = Libc.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            throw NativeCallException.FromLastError("socket(AF_INET)");
        }

        try
        {
            WaitForInterface(fd, name);

            // Before the link goes up, so it never sends router solicitations or gets a
            // link-local address: the host drops IPv6 anyway (absent when the kernel has no IPv6).
            var disable = $"/proc/sys/net/ipv6/conf/{name}/disable_ipv6";
            if (File.Exists(disable))
            {
                File.WriteAllText(disable, "1");
            }

            IfreqInt(fd, name, SIOCSIFMTU, config.Mtu, "SIOCSIFMTU");
            IfreqAddress(fd, name, SIOCSIFADDR, address, "SIOCSIFADDR");
            IfreqAddress(fd, name, SIOCSIFNETMASK, mask, "SIOCSIFNETMASK");
            SetUp(fd, name);
            AddDefaultRoute(fd, name, gateway);
        }
        finally
        {
            _ = Libc.close(fd);
        }
    }

    private static uint ParseIPv4(string text, string what) =>
        IPAddress.TryParse(text, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork
            ? BinaryPrimitives.ReadUInt32BigEndian(ip.GetAddressBytes())
            : throw new ArgumentException($"{what} '{text}' is not an IPv4 address");

    private static unsafe void WaitForInterface(int fd, string name)
    {
        var clock = Stopwatch.StartNew();
        var request = stackalloc byte[IfreqSize];
        while (true)
        {
            Prepare(request, name);
            if (Libc.ioctl(fd, SIOCGIFINDEX, request) == 0)
            {
                return;
            }

            if (clock.Elapsed > AppearTimeout)
            {
                throw new IOException($"no network interface {name}: the VM has no NIC, or virtio_net did not load (see the guest console)");
            }

            Thread.Sleep(20);
        }
    }

    private static unsafe void Prepare(byte* request, string name)
    {
        new Span<byte>(request, IfreqSize).Clear();
        System.Text.Encoding.ASCII.GetBytes(name, new Span<byte>(request, 15));
    }

    private static unsafe void IfreqInt(int fd, string name, nuint op, int value, string what)
    {
        var request = stackalloc byte[IfreqSize];
        Prepare(request, name);
        *(int*)(request + 16) = value;
        Check(Libc.ioctl(fd, op, request), what, name);
    }

    private static unsafe void IfreqAddress(int fd, string name, nuint op, uint address, string what)
    {
        var request = stackalloc byte[IfreqSize];
        Prepare(request, name);
        WriteSockaddrIn(request + 16, address);
        Check(Libc.ioctl(fd, op, request), what, name);
    }

    private static unsafe void SetUp(int fd, string name)
    {
        var request = stackalloc byte[IfreqSize];
        Prepare(request, name);
        Check(Libc.ioctl(fd, SIOCGIFFLAGS, request), "SIOCGIFFLAGS", name);
        *(short*)(request + 16) |= IFF_UP;
        Check(Libc.ioctl(fd, SIOCSIFFLAGS, request), "SIOCSIFFLAGS up", name);
    }

    private static unsafe void AddDefaultRoute(int fd, string name, uint gateway)
    {
        var route = stackalloc byte[RtentrySize];
        new Span<byte>(route, RtentrySize).Clear();
        WriteSockaddrIn(route + 8, 0);        // rt_dst 0.0.0.0
        WriteSockaddrIn(route + 24, gateway); // rt_gateway
        WriteSockaddrIn(route + 40, 0);       // rt_genmask 0.0.0.0
        *(ushort*)(route + 56) = RTF_UP | RTF_GATEWAY;

        // rt_dev: a NUL-terminated name the kernel copies during the call; the fixed block
        // keeps the bytes in place until it returns.
        var device = new byte[16];
        System.Text.Encoding.ASCII.GetBytes(name, device);
        fixed (byte* dev = device)
        {
            *(byte**)(route + 88) = dev;
            var result = Libc.ioctl(fd, SIOCADDRT, route);
            if (result != 0 && Marshal.GetLastPInvokeError() != Errno.EEXIST)
            {
                throw new NativeCallException($"ioctl(SIOCADDRT default via {name})", Marshal.GetLastPInvokeError());
            }
        }
    }

    /// <summary>struct sockaddr_in: family (host order), port 0, address (network order), zero padding.</summary>
    private static unsafe void WriteSockaddrIn(byte* at, uint address)
    {
        var span = new Span<byte>(at, 16);
        span.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(span, AF_INET);
        BinaryPrimitives.WriteUInt32BigEndian(span[4..], address);
    }

    private static void Check(int result, string what, string name)
    {
        if (result != 0)
        {
            throw new NativeCallException($"ioctl({what} {name})", Marshal.GetLastPInvokeError());
        }
    }
}
