namespace Matchlock.Guest.Processes;

/// <summary>
/// The command could not be started. <see cref="ExitCode"/> follows the shell convention (127 not
/// found, 126 cannot execute) so the host can report it like a process result; <see cref="Code"/>
/// says why in the reply's errno style (ENOENT, EACCES, EUSER for an unknown user or group,
/// ECWD for a bad working directory).
/// </summary>
internal sealed class SpawnException(int exitCode, string message, string? code = null) : Exception(message)
{
    internal int ExitCode { get; } = exitCode;

    internal string Code { get; } = code ?? (exitCode == 127 ? "ENOENT" : "EACCES");
}
