using System.CommandLine;
using System.Globalization;

namespace Matchlock.Cli.Commands;

/// <summary>The flags of <c>matchlock run</c> (docs/COMPATIBILITY.md "CLI"), declared once.</summary>
internal sealed class RunOptions
{
    public Option<string> Image { get; } = new("--image") { Description = "Image to run (see `matchlock image ls`)", Required = true };
    public Option<bool> Remove { get; } = new("--rm") { Description = "Remove the VM and its disks when the command ends", DefaultValueFactory = _ => true };
    public Option<bool> Detach { get; } = new("--detach", "-d") { Description = "Keep the sandbox running in the background; print its id once it runs (implies --rm=false)" };
    public Option<string?> GracefulShutdown { get; } = new("--graceful-shutdown") { Description = "When a long-lived sandbox stops, time its processes get after SIGTERM (e.g. 10s, 500ms, 1m; default 2s)" };
    public Option<bool> Interactive { get; } = new("--interactive", "-i") { Description = "Keep stdin open and stream it to the command" };
    public Option<bool> Tty { get; } = new("--tty", "-t") { Description = "Allocate a pseudo-terminal (with -i)" };
    public Option<string[]> Env { get; } = new("--env", "-e") { Description = "Set KEY=VALUE (KEY alone: take it from this environment)", AllowMultipleArgumentsPerToken = false };
    public Option<string[]> EnvFile { get; } = new("--env-file") { Description = "Read KEY=VALUE lines from a file" };
    public Option<string?> Workdir { get; } = new("--workdir", "-w") { Description = "Working directory in the guest" };
    public Option<string?> User { get; } = new("--user", "-u") { Description = "uid, uid:gid or user name" };
    public Option<bool> Pull { get; } = new("--pull") { Description = "Pull the image from its registry even if it is stored (it is pulled anyway when missing)" };
    public Option<string?> Entrypoint { get; } = new("--entrypoint") { Description = "Override the image's ENTRYPOINT (\"\" clears it)" };
    public Option<double> Cpus { get; } = new("--cpus") { Description = "CPUs (fractions enforced with a cgroup quota)", DefaultValueFactory = _ => 1 };
    public Option<int> PidsLimit { get; } = new("--pids-limit") { Description = "Processes and threads the command may have at once in the guest (-1: no limit)", DefaultValueFactory = _ => Core.Sandboxes.SandboxSpec.DefaultPidsLimit };
    public Option<int> Memory { get; } = new("--memory") { Description = "Memory in MB", DefaultValueFactory = _ => 512 };
    public Option<int> DiskSize { get; } = new("--disk-size") { Description = "Writable disk size in MB", DefaultValueFactory = _ => 5120 };
    public Option<int?> Timeout { get; } = new("--timeout") { Description = "Stop the command after this many seconds (exit 124)" };
    public Option<string?> Hostname { get; } = new("--hostname") { Description = "Guest host name (default: the VM id)" };
    public Option<bool> NoNetwork { get; } = new("--no-network") { Description = "No network interface at all" };
    public Option<string[]> AllowHost { get; } = new("--allow-host") { Description = "Host the guest may reach (repeatable, comma lists, globs like *.example.com); turns interception on" };
    public Option<string[]> AllowTcp { get; } = new("--allow-tcp") { Description = "HOST:PORT that raw TCP (not HTTP/TLS, e.g. ssh) may reach, by the name the sandbox DNS gave out (repeatable, comma lists); turns interception on" };
    public Option<string[]> Secret { get; } = new("--secret") { Description = "NAME[=VALUE]@host1,host2: the guest sees a placeholder, the proxy sends VALUE (default: $NAME) to those hosts only, over TLS only (http://HOST allows cleartext)" };
    public Option<string[]> SecretFile { get; } = new("--secret-file") { Description = "NAME=PATH@host1,host2: as --secret, the value read from the file PATH (one trailing newline dropped)" };
    public Option<string[]> SecretPlaceholder { get; } = new("--secret-placeholder") { Description = "NAME=TEXT: the placeholder the guest sees for secret NAME (default: SANDBOX_SECRET_ and 32 random hex digits)" };
    public Option<string[]> AddHost { get; } = new("--add-host") { Description = "HOST:IP answered by the sandbox DNS (and allowed even if private)" };
    public Option<string[]> DnsServers { get; } = new("--dns-servers") { Description = "Upstream resolvers for the sandbox DNS (comma list; default: the host's resolver)" };
    public Option<int> Mtu { get; } = new("--mtu") { Description = "MTU of the guest's network interface", DefaultValueFactory = _ => 1500 };
    public Option<bool> NetworkIntercept { get; } = new("--network-intercept") { Description = "Intercept with an empty allow-list (hosts are added at runtime)" };
    public Option<string?> UpstreamCa { get; } = new("--upstream-ca") { Description = "Extra CA certificate (PEM) trusted for upstream TLS" };
    public Option<string[]> Disk { get; } = new("--disk") { Description = "Attach an ext4 disk: @VOLUME:/guest/path[:ro] (see `matchlock volume`) or /host/file.ext4:/guest/path[:ro] (repeatable)" };
    public Option<string[]> Publish { get; } = new("--publish", "-p") { Description = "Forward a host port to a guest port: [LOCAL:]REMOTE (repeatable; LOCAL 0 picks a free port)" };
    public Option<string[]> Address { get; } = PortForwardCommand.CreateAddressOption();
    public Option<string[]> Volume { get; } = new("--volume", "-v") { Description = "Mount a host folder: HOST:GUEST[:overlay|host_fs|ro] (repeatable; a relative GUEST is under --workspace; overlay, the default, is a private copy-on-write view)" };
    public Option<string> Workspace { get; } = new("--workspace") { Description = "Where relative -v guest paths go", DefaultValueFactory = _ => Matchlock.Core.Vfs.VfsMountSpec.DefaultWorkspace };
    public Option<string?> Accel { get; } = new("--accel") { Description = "auto | kvm | tcg (default: $MATCHLOCK_ACCEL or auto)" };
    public Argument<string[]> Command { get; } = new("command") { Arity = ArgumentArity.ZeroOrMore, Description = "Command and arguments (put them after --)" };

    public RunOptions()
    {
        Timeout.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is <= 0)
            {
                r.AddError("--timeout must be a positive number of seconds");
            }
        });
        GracefulShutdown.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is { } v && !Duration.TryParse(v, out _))
            {
                r.AddError($"--graceful-shutdown must be a duration like 10s, 500ms or 1m30s; got \"{v}\"");
            }
        });
        Accel.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string?>() is { } v && v is not ("auto" or "kvm" or "tcg"))
            {
                r.AddError($"--accel must be auto, kvm or tcg; got \"{v}\"");
            }
        });
    }

    public IEnumerable<Symbol> All() =>
    [
        Image, Pull, Remove, Detach, GracefulShutdown, Interactive, Tty, Env, EnvFile, Workdir, User, Entrypoint, Cpus, PidsLimit, Memory, DiskSize,
        Disk, Volume, Workspace,
        Timeout, Hostname, NoNetwork, AllowHost, AllowTcp, Secret, SecretFile, SecretPlaceholder, AddHost, DnsServers, Mtu, NetworkIntercept, UpstreamCa, Publish, Address, Accel, Command,
    ];

    public static string Seconds(int s) => s.ToString(CultureInfo.InvariantCulture) + " s";
}
