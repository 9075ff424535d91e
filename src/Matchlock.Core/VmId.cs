using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Matchlock.Core;

/// <summary>VM ids: <c>vm-</c> followed by 8 lower-case hex characters (docs/COMPATIBILITY.md "CLI").</summary>
public static partial class VmId
{
    public static string New() => "vm-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    public static bool IsValid(string id) => Pattern().IsMatch(id);

    [GeneratedRegex("^vm-[0-9a-f]{8}$")]
    private static partial Regex Pattern();
}
