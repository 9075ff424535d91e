using Matchlock.Guest.Users;
using Matchlock.Protocol.Messages;

namespace Matchlock.Guest.Processes;

/// <summary>
/// Turns an exec request into a running process: resolves the user in the image's passwd/group,
/// builds the environment, checks the working directory and finds the executable, then spawns.
/// Every failure before the process exists comes back as a <see cref="SpawnException"/> with a
/// shell-style exit code and a message meant for the user's stderr.
/// </summary>
internal sealed class CommandLauncher
{
    private readonly Spawner _spawner;
    private readonly ExecutableResolver _resolver;
    private readonly UserDatabaseCache _users;
    private readonly Func<string?> _hostname;

    /// <param name="spawner">Starts the resolved command.</param>
    /// <param name="root">Where the image's /etc lives: "/" in the guest after the switch.</param>
    /// <param name="hostname">The current hostname for HOSTNAME (set by configure).</param>
    /// <param name="resolver">Executable lookup; defaults to stat(2) on the live filesystem.</param>
    internal CommandLauncher(Spawner spawner, string root, Func<string?> hostname, ExecutableResolver? resolver = null)
    {
        _spawner = spawner;
        _users = new UserDatabaseCache(root);
        _hostname = hostname;
        _resolver = resolver ?? new ExecutableResolver();
    }

    internal ChildProcess Launch(CommandRequest request)
    {
        if (request.Arguments.Count == 0)
        {
            throw new SpawnException(127, "exec: no command given");
        }

        ExecUser user;
        try
        {
            user = UserSpecResolver.Resolve(request.User, _users.Get());
        }
        catch (UserResolutionException e)
        {
            throw new SpawnException(126, $"exec: {e.Message}", GuestErrorCodes.User);
        }

        var workingDirectory = string.IsNullOrEmpty(request.WorkingDirectory) ? "/" : request.WorkingDirectory;
        if (!workingDirectory.StartsWith('/'))
        {
            throw new SpawnException(126, $"exec: working directory {workingDirectory} must be an absolute path", GuestErrorCodes.WorkingDirectory);
        }

        if (!Directory.Exists(workingDirectory) && request.CreateWorkingDirectory)
        {
            try
            {
                Directory.CreateDirectory(workingDirectory); // 0755 under PID 1's umask 022, owned by root, like Docker
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new SpawnException(126, $"exec: mkdir {workingDirectory}: {e.Message}", GuestErrorCodes.WorkingDirectory);
            }
        }

        if (!Directory.Exists(workingDirectory))
        {
            throw new SpawnException(126, $"exec: chdir {workingDirectory}: no such file or directory", GuestErrorCodes.WorkingDirectory);
        }

        var environment = EnvironmentBuilder.Build(request.Environment, user.Home, _hostname(), request.Tty);
        var resolution = _resolver.Resolve(request.Arguments[0], EnvironmentBuilder.Get(environment, "PATH"), workingDirectory, user);
        if (resolution.Path is null)
        {
            throw new SpawnException(resolution.ExitCode, resolution.Error!);
        }

        return _spawner.Spawn(new SpawnSpec(resolution.Path, request.Arguments, environment, workingDirectory, user)
        {
            Stdin = request.Stdin,
            Tty = request.Tty,
            Rows = request.Rows,
            Columns = request.Columns,
        });
    }
}
