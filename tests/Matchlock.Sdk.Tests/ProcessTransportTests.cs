using System.Diagnostics;

namespace Matchlock.Sdk.Tests;

/// <summary>
/// The default transport, a child <c>matchlock rpc</c>, against a small shell-script fake; and
/// the CLI commands the protocol has no method for (<c>rm</c>, <c>volume</c>).
/// </summary>
public sealed class ProcessTransportTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("matchlock-sdk-fake-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_child_rpc_process_serves_the_sandbox_and_exits_on_close()
    {
        var options = Options();
        await using (var sandbox = await MatchlockClient.LaunchAsync(Fake.Busybox, options, Fake.Token))
        {
            Assert.Equal("vm-0badcafe", sandbox.Id);
            var result = await sandbox.ExecAsync("echo hello", cancellationToken: Fake.Token);
            Assert.Equal("hello\n", result.StdoutText);
        }

        var log = await File.ReadAllLinesAsync(Log, Fake.Token);
        Assert.Equal("args: rpc", log[0]);
        Assert.Contains(log, l => l.StartsWith("request: ", StringComparison.Ordinal) && l.Contains("\"method\":\"close\"", StringComparison.Ordinal));
        Assert.Equal("exit: closed", log[^1]);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_child_that_dies_fails_the_pending_request_with_its_stderr()
    {
        await using var sandbox = await MatchlockClient.LaunchAsync(Fake.Busybox, Options(), Fake.Token);
        var error = await Assert.ThrowsAsync<MatchlockSandboxException>(() => sandbox.ExecAsync("die", cancellationToken: Fake.Token));
        Assert.Contains("guest agent lost", error.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_child_that_ignores_close_is_killed_after_the_timeouts()
    {
        await using var sandbox = await MatchlockClient.LaunchAsync(Fake.Busybox, Options(), Fake.Token);
        await sandbox.ExecAsync("hang-on-close", cancellationToken: Fake.Token);
        var clock = Stopwatch.StartNew();
        await sandbox.CloseAsync(TimeSpan.FromMilliseconds(300), Fake.Token);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.3), TimeSpan.FromSeconds(8));
        Assert.DoesNotContain("exit: closed", await File.ReadAllTextAsync(Log, Fake.Token), StringComparison.Ordinal);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task A_missing_binary_says_how_to_point_at_it()
    {
        var options = new MatchlockClientOptions { BinaryPath = Path.Combine(_dir.FullName, "no-such-matchlock") };
        var error = await Assert.ThrowsAsync<MatchlockSandboxException>(() => MatchlockClient.LaunchAsync(Fake.Busybox, options, Fake.Token));
        Assert.Contains("MATCHLOCK_BIN", error.Message, StringComparison.Ordinal);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Remove_runs_rm_with_the_id_after_closing()
    {
        var sandbox = await MatchlockClient.LaunchAsync(Fake.Busybox, Options() with { RemoveOnDispose = true }, Fake.Token);
        await sandbox.DisposeAsync();
        var log = await File.ReadAllLinesAsync(Log, Fake.Token);
        Assert.Equal("args: rm vm-0badcafe", log[^1]);
        Assert.Contains("exit: closed", log);
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task Volume_commands_run_the_cli_and_read_its_json()
    {
        var options = Options();
        var created = await MatchlockClient.CreateVolumeAsync("data", 64, options, Fake.Token);
        Assert.Equal(new VolumeInfo("data", "64.0 MB", "/vols/data.ext4"), created);
        var listed = await MatchlockClient.ListVolumesAsync(options, Fake.Token);
        Assert.Equal([new VolumeInfo("data", "67108864", "/vols/data.ext4")], listed);
        await MatchlockClient.RemoveVolumeAsync("data", options, Fake.Token);
        var log = await File.ReadAllLinesAsync(Log, Fake.Token);
        Assert.Equal(["args: volume create data --size 64 --json", "args: volume ls --json", "args: volume rm data"], log);

        var failing = await Assert.ThrowsAsync<MatchlockRpcException>(() => MatchlockClient.RemoveVolumeAsync("missing", options, Fake.Token));
        Assert.Contains("no volume missing", failing.Message, StringComparison.Ordinal);
    }

    private string Log => Path.Combine(_dir.FullName, "calls.log");

    private MatchlockClientOptions Options()
    {
        var script = Path.Combine(_dir.FullName, "matchlock");
        File.WriteAllText(script, Script.Replace("@LOG@", Log, StringComparison.Ordinal));
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new MatchlockClientOptions { BinaryPath = script };
    }

    private const string Script = """
        #!/bin/sh
        # A scripted `matchlock` for the SDK's unit tests: `rpc` answers a few methods, the rest are CLI stubs.
        log='@LOG@'
        echo "args: $*" >> "$log"
        case "$1" in
          rpc) ;;
          rm) exit 0 ;;
          volume)
            case "$2" in
              create) printf '{"name":"%s","size":"%s.0 MB","path":"/vols/%s.ext4"}\n' "$3" "$5" "$3"; exit 0 ;;
              ls) printf '[{"name":"data","size":67108864,"used":4096,"path":"/vols/data.ext4"}]\n'; exit 0 ;;
              rm) if [ "$3" = data ]; then exit 0; fi; echo "matchlock: no volume $3" >&2; exit 1 ;;
            esac ;;
          *) echo "unknown command $1" >&2; exit 2 ;;
        esac
        hang=0
        while IFS= read -r line; do
          echo "request: $line" >> "$log"
          id=$(printf '%s' "$line" | sed -n 's/^{"jsonrpc":"2.0","id":\([0-9]*\),.*/\1/p')
          method=$(printf '%s' "$line" | sed -n 's/^{"jsonrpc":"2.0","id":[0-9]*,"method":"\([^"]*\)".*/\1/p')
          case "$method" in
            create) printf '{"jsonrpc":"2.0","id":%s,"result":{"id":"vm-0badcafe"}}\n' "$id" ;;
            exec)
              case "$line" in
                *'"command":"die"'*) echo "fatal: guest agent lost" >&2; exit 3 ;;
                *'"command":"hang-on-close"'*) hang=1; printf '{"jsonrpc":"2.0","id":%s,"result":{"exit_code":0,"stdout":"","stderr":"","duration_ms":1}}\n' "$id" ;;
                *) printf '{"jsonrpc":"2.0","id":%s,"result":{"exit_code":0,"stdout":"aGVsbG8K","stderr":"","duration_ms":2}}\n' "$id" ;;
              esac ;;
            close)
              if [ "$hang" = 1 ]; then sleep 30; fi
              printf '{"jsonrpc":"2.0","id":%s,"result":{}}\n' "$id"
              echo "exit: closed" >> "$log"
              exit 0 ;;
            *) printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found: %s"}}\n' "$id" "$method" ;;
          esac
        done
        """;
}
