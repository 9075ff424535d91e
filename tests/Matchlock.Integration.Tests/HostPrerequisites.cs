namespace Matchlock.Integration.Tests;

/// <summary>What a host-tier test needs beyond a plain user account; combine with <c>|</c>.</summary>
[Flags]
internal enum HostNeeds
{
    None = 0,

    /// <summary>uid 0: chown, mknod, setuid/setgid, xattrs in the security namespace, network namespaces.</summary>
    Root = 1 << 0,

    /// <summary>iproute2 (<c>ip</c>) and nftables (<c>nft</c>).</summary>
    NetworkTools = 1 << 1,

    /// <summary>QEMU, a guest kernel in /boot and busybox-static (a floor guest booted by the library, no image).</summary>
    Qemu = 1 << 2,

    /// <summary>What scripts/make-base-image.sh and an image import use: skopeo, mkfs.erofs/fsck.erofs, busybox-static.</summary>
    ImageTools = 1 << 3,

    /// <summary>GNU cpio, the independent oracle for our initramfs writer.</summary>
    Cpio = 1 << 4,
}

/// <summary>
/// The one gate for tests that need more of the host than the unit tier may ask for (root, QEMU,
/// network namespaces, root-only host tools). Like <see cref="VmPrerequisites"/>: a missing piece
/// skips the test on a developer machine and fails it under <c>MATCHLOCK_REQUIRE_VM=1</c> (CI),
/// naming what is missing and how to get it.
/// </summary>
internal static class HostPrerequisites
{
    /// <summary>CI: a missing prerequisite is a failure, not a skip.</summary>
    public static readonly bool Required = Environment.GetEnvironmentVariable("MATCHLOCK_REQUIRE_VM") == "1";

    /// <summary>Null when everything in <paramref name="needs"/> is there; otherwise what is missing and how to get it.</summary>
    public static string? Missing(HostNeeds needs)
    {
        var missing = new List<string>();
        if (needs.HasFlag(HostNeeds.Root) && Environment.UserName != "root")
        {
            missing.Add("root (run the tests as root, e.g. sudo ./test.sh)");
        }

        if (needs.HasFlag(HostNeeds.NetworkTools))
        {
            MissingTools(missing, ("ip", "iproute2"), ("nft", "nftables"));
        }

        if (needs.HasFlag(HostNeeds.Qemu))
        {
            MissingTools(missing, ("qemu-system-x86_64", "qemu-system-x86"));
            if (!Directory.EnumerateFiles("/boot", "vmlinuz-*").Any())
            {
                missing.Add("a guest kernel in /boot (apt-get install linux-image-cloud-amd64, or ./setup.sh)");
            }

            if (!File.Exists("/bin/busybox"))
            {
                missing.Add("/bin/busybox (apt-get install busybox-static, or ./setup.sh)");
            }
        }

        if (needs.HasFlag(HostNeeds.ImageTools))
        {
            MissingTools(missing, ("skopeo", "skopeo"), ("mkfs.erofs", "erofs-utils"), ("fsck.erofs", "erofs-utils"));
            if (!File.Exists("/bin/busybox"))
            {
                missing.Add("/bin/busybox (apt-get install busybox-static, or ./setup.sh)");
            }
        }

        if (needs.HasFlag(HostNeeds.Cpio))
        {
            MissingTools(missing, ("cpio", "cpio"));
        }

        return missing.Count == 0 ? null : "host tests need: " + string.Join("; ", missing);
    }

    /// <summary>Skips (developer machine) or fails (CI) when the host cannot give the test what it needs.</summary>
    public static void Ensure(HostNeeds needs)
    {
        if (Missing(needs) is { } why)
        {
            SkipOrFail(why);
        }
    }

    /// <summary>The shared verdict for a missing prerequisite: skip, or fail under MATCHLOCK_REQUIRE_VM=1.</summary>
    public static void SkipOrFail(string why)
    {
        if (Required)
        {
            Assert.Fail(why + " — MATCHLOCK_REQUIRE_VM=1, so this is a failure, not a skip");
        }

        Assert.Skip(why);
    }

    private static void MissingTools(List<string> missing, params (string Program, string Package)[] tools)
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "") + ":/usr/sbin:/sbin";
        foreach (var (program, package) in tools)
        {
            if (!path.Split(':', StringSplitOptions.RemoveEmptyEntries).Any(dir => File.Exists(Path.Combine(dir, program))))
            {
                missing.Add($"{program} (apt-get install {package}, or ./setup.sh)");
            }
        }
    }
}
