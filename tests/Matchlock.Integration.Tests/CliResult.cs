using System.Text;

namespace Matchlock.Integration.Tests;

public sealed record CliResult(int ExitCode, byte[] StdoutBytes, string Stderr)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{(StdoutBytes.Length > 4000 ? $"({StdoutBytes.Length} bytes)" : Stdout)}\n--- stderr ---\n{Stderr}";
}
