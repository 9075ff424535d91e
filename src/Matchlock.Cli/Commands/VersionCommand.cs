using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;
using Matchlock.Protocol;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>matchlock version</c> and <c>matchlock --version</c> (docs/COMPATIBILITY.md "CLI"): the original's
/// <c>matchlock VERSION</c> and <c>commit: SHA</c> lines, then the build date and (ours) the
/// guest protocol version.
/// </summary>
internal static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print the version, commit and build date");
        command.SetAction(_ => Print());
        return command;
    }

    /// <summary>Makes the root's <c>--version</c> print what <c>version</c> prints.</summary>
    public static void ReplaceRootVersionOption(RootCommand root)
    {
        foreach (var option in root.Options.OfType<VersionOption>())
        {
            option.Action = new PrintAction();
        }
    }

    private static int Print()
    {
        var assembly = typeof(VersionCommand).Assembly;
        var informational = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "dev";
        var plus = informational.IndexOf('+', StringComparison.Ordinal);
        var version = plus < 0 ? informational : informational[..plus];
        var commit = plus < 0 ? "unknown" : informational[(plus + 1)..];
        var built = assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "BuildDate")?.Value ?? "unknown";
        Console.WriteLine($"matchlock {version}");
        Console.WriteLine($"commit: {commit}");
        Console.WriteLine($"built: {built}");
        Console.WriteLine($"protocol: {ProtocolInfo.Version}");
        return 0;
    }

    private sealed class PrintAction : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult) => Print();
    }
}
