using System.Text;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// Hostname and the name-resolution files, written the way Docker writes them: /etc/hostname,
/// /etc/hosts (localhost lines, the hostname, extra entries) and /etc/resolv.conf. The files are
/// replaced (write + rename), never written through: images often ship /etc/resolv.conf as a
/// symlink into /run, which does not exist here.
/// </summary>
internal static class GuestIdentity
{
    internal static unsafe void SetHostname(string hostname)
    {
        ValidateHostname(hostname);
        var bytes = Encoding.ASCII.GetBytes(hostname);
        fixed (byte* p = bytes)
        {
            if (Libc.sethostname(p, (nuint)bytes.Length) != 0)
            {
                throw NativeCallException.FromLastError($"sethostname {hostname}");
            }
        }
    }

    /// <param name="root">"/" in the guest; a temp directory in tests.</param>
    /// <param name="hostname">The VM's hostname.</param>
    /// <param name="hostAddress">The guest's address for the hostname line; null → 127.0.1.1 (Debian's convention).</param>
    /// <param name="extraHosts">(host, address) pairs, like `--add-host`.</param>
    internal static void WriteHostFiles(string root, string hostname, string? hostAddress, IReadOnlyList<(string Host, string Address)> extraHosts)
    {
        ValidateHostname(hostname);
        var hosts = new StringBuilder()
            .Append("127.0.0.1\tlocalhost\n")
            .Append("::1\tlocalhost ip6-localhost ip6-loopback\n")
            .Append("fe00::0\tip6-localnet\n")
            .Append("ff00::0\tip6-mcastprefix\n")
            .Append("ff02::1\tip6-allnodes\n")
            .Append("ff02::2\tip6-allrouters\n");
        hosts.Append(ValidateWord(hostAddress ?? "127.0.1.1", "address")).Append('\t').Append(hostname).Append('\n');
        foreach (var (host, address) in extraHosts)
        {
            hosts.Append(ValidateWord(address, "address")).Append('\t').Append(ValidateWord(host, "host name")).Append('\n');
        }

        Replace(Path.Combine(root, "etc/hostname"), hostname + "\n");
        Replace(Path.Combine(root, "etc/hosts"), hosts.ToString());
    }

    /// <param name="root">"/" in the guest; a temp directory in tests.</param>
    /// <param name="nameServers">Addresses, in order.</param>
    /// <param name="searchDomains">Optional search list.</param>
    internal static void WriteResolvConf(string root, IReadOnlyList<string> nameServers, IReadOnlyList<string> searchDomains)
    {
        var text = new StringBuilder();
        foreach (var server in nameServers)
        {
            text.Append("nameserver ").Append(ValidateWord(server, "name server")).Append('\n');
        }

        if (searchDomains.Count > 0)
        {
            text.Append("search ").AppendJoin(' ', searchDomains.Select(d => ValidateWord(d, "search domain"))).Append('\n');
        }

        Replace(Path.Combine(root, "etc/resolv.conf"), text.ToString());
    }

    internal static void ValidateHostname(string hostname)
    {
        // sethostname(2) limit is 64 bytes (HOST_NAME_MAX); letters, digits, '-' and '.' (RFC 1123).
        if (hostname.Length is 0 or > 64 || !hostname.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.'))
        {
            throw new ArgumentException($"invalid hostname \"{hostname}\": use 1-64 letters, digits, '-' or '.'", nameof(hostname));
        }
    }

    /// <summary>Rejects whitespace and control characters, which would inject extra lines.</summary>
    private static string ValidateWord(string value, string what)
    {
        if (value.Length == 0 || value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '#'))
        {
            throw new ArgumentException($"invalid {what} \"{value}\"", nameof(value));
        }

        return value;
    }

    private static void Replace(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".matchlock-new";
        File.WriteAllText(temporary, content);
        File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        // rename(2) replaces a symlink itself instead of following it.
        File.Move(temporary, path, overwrite: true);
    }
}
