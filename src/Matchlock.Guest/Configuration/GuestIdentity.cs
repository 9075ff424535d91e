using System.Text;
using Matchlock.Guest.Interop;

namespace Matchlock.Guest.Configuration;

/// <summary>
/// Hostname and the name-resolution files, written the way Docker writes them: /etc/hostname,
/// /etc/hosts (the localhost lines with the hostname, then extra entries) and /etc/resolv.conf. The files are
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

    /// <summary>
    /// /etc/hosts as the original writes it (docs/COMPATIBILITY.md "CLI", <c>--add-host</c>): the
    /// hostname on the IPv4 loopback line, the IPv6 loopback line, then one line per extra host,
    /// fields separated by one space.
    /// </summary>
    /// <param name="root">"/" in the guest; a temp directory in tests.</param>
    /// <param name="hostname">The VM's hostname.</param>
    /// <param name="extraHosts">(host, address) pairs, like `--add-host`.</param>
    internal static void WriteHostFiles(string root, string hostname, IReadOnlyList<(string Host, string Address)> extraHosts)
    {
        ValidateHostname(hostname);
        var hosts = new StringBuilder()
            .Append("127.0.0.1 localhost localhost.localdomain ").Append(hostname).Append('\n')
            .Append("::1 localhost ip6-localhost ip6-loopback\n");
        foreach (var (host, address) in extraHosts)
        {
            hosts.Append(ValidateWord(address, "address")).Append(' ').Append(ValidateWord(host, "host name")).Append('\n');
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
