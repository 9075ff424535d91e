namespace Matchlock.Guest.Processes;

/// <summary>Either the path to execute, or a shell-style failure (127 not found, 126 cannot run).</summary>
internal sealed record ExecutableResolution(string? Path, int ExitCode, string? Error)
{
    internal static ExecutableResolution Found(string path) => new(path, 0, null);

    internal static ExecutableResolution Failed(int exitCode, string error) => new(null, exitCode, error);
}
