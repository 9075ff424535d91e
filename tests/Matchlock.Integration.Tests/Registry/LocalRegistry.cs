using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Matchlock.Integration.Tests.Registry;

/// <summary>User name and password for a registry's htpasswd file or a token endpoint.</summary>
public sealed record RegistryCredentials(string Username, string Password)
{
    /// <summary>The value of an <c>Authorization: Basic …</c> header (RFC 7617).</summary>
    public string BasicParameter => Convert.ToBase64String(Encoding.UTF8.GetBytes(Username + ":" + Password));
}

/// <summary>
/// Debian's <c>docker-registry serve</c> (distribution 2.8) on 127.0.0.1 with its own config,
/// storage and optional htpasswd (bcrypt) auth in a temp directory. One owner: dispose stops the
/// process by its PID and deletes the directory. Never reaches beyond loopback.
/// </summary>
public sealed class LocalRegistry : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    private readonly Process _process;
    private readonly string _dir;
    private readonly StringBuilder _log;

    private LocalRegistry(Process process, string dir, StringBuilder log, int port, RegistryCredentials? credentials)
    {
        _process = process;
        _dir = dir;
        _log = log;
        Port = port;
        Credentials = credentials;
    }

    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>, as it appears in an image reference.</summary>
    public string Host => "127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture);

    public Uri Url => new("http://" + Host);

    /// <summary>Null when the registry runs without auth.</summary>
    public RegistryCredentials? Credentials { get; }

    /// <summary>The filesystem driver's root directory.</summary>
    public string StorageRoot => Path.Combine(_dir, "storage");

    /// <summary>What the registry wrote to stdout and stderr so far (level error only).</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>Starts a registry; with <paramref name="credentials"/> it requires them (HTTP Basic).</summary>
    public static async Task<LocalRegistry> StartAsync(RegistryCredentials? credentials = null, CancellationToken cancellationToken = default)
    {
        // The free port is found by binding port 0 and releasing it, which leaves a small window
        // for another process to take it: a start that fails to bind is retried on a new port.
        Exception? last = null;
        for (var attempt = 0; attempt < 3; attempt++)
        {
            try
            {
                return await StartOnceAsync(FreePort(), credentials, cancellationToken);
            }
            catch (RegistryStartException e) when (e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                last = e;
            }
        }

        throw last!;
    }

    /// <summary>Where the registry keeps a blob's bytes.</summary>
    public string BlobDataPath(string digest)
    {
        var hex = Hex(digest);
        return Path.Combine(StorageRoot, "docker", "registry", "v2", "blobs", "sha256", hex[..2], hex, "data");
    }

    /// <summary>Flips one byte of a stored blob in place (same length), so it no longer matches its digest.</summary>
    public void CorruptBlob(string digest, long offset = -1)
    {
        var path = BlobDataPath(digest);
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        if (file.Length == 0)
        {
            throw new InvalidOperationException($"blob {digest} is empty; nothing to corrupt");
        }

        file.Position = offset >= 0 ? offset : file.Length / 2;
        var b = file.ReadByte();
        file.Position--;
        file.WriteByte((byte)(b ^ 0xFF));
    }

    /// <summary>Deletes a stored blob's bytes; the registry then fails to serve it.</summary>
    public void DeleteBlob(string digest) => File.Delete(BlobDataPath(digest));

    public RegistryPusher CreatePusher() => new(Url, Credentials);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(); // by the PID we started; the registry has no children
                await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            _process.Dispose();
            Directory.Delete(_dir, recursive: true);
        }
    }

    public override string ToString() => $"docker-registry at {Host} (pid {_process.Id})";

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static string Hex(string digest) =>
        digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest["sha256:".Length..]
        : throw new ArgumentException("not a sha256 digest: " + digest, nameof(digest));

    private static async Task<LocalRegistry> StartOnceAsync(int port, RegistryCredentials? credentials, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(Path.GetTempPath(), "matchlock-registry-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(dir, "storage"));
        var log = new StringBuilder();
        Process? process = null;
        try
        {
            var auth = "";
            if (credentials is not null)
            {
                var htpasswd = Path.Combine(dir, "htpasswd");
                await File.WriteAllTextAsync(htpasswd, await HtpasswdLineAsync(credentials, cancellationToken), cancellationToken);
                auth = $"auth:\n  htpasswd:\n    realm: matchlock-test\n    path: {htpasswd}\n";
            }

            // Quoted paths: the temp directory could contain YAML-significant characters.
            var config = Path.Combine(dir, "config.yml");
            await File.WriteAllTextAsync(config, $"""
                version: 0.1
                log:
                  level: error
                  accesslog:
                    disabled: true
                storage:
                  filesystem:
                    rootdirectory: "{Path.Combine(dir, "storage")}"
                  delete:
                    enabled: true
                  cache:
                    blobdescriptor: inmemory
                http:
                  addr: 127.0.0.1:{port}
                {auth}
                """, cancellationToken);

            var psi = new ProcessStartInfo(RegistryPrerequisites.RegistryProgram)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add("serve");
            psi.ArgumentList.Add(config);
            // The registry must not reach for any proxy, nor inherit our OTEL or similar settings.
            psi.Environment.Remove("HTTP_PROXY");
            psi.Environment.Remove("HTTPS_PROXY");
            process = Process.Start(psi) ?? throw new RegistryStartException("could not start docker-registry");
            process.OutputDataReceived += (_, e) => Append(log, e.Data);
            process.ErrorDataReceived += (_, e) => Append(log, e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            var registry = new LocalRegistry(process, dir, log, port, credentials);
            await registry.WaitUntilServingAsync(cancellationToken);
            return registry;
        }
        catch
        {
            // Not yet owned by a LocalRegistry: clean up here, then let the error through.
            if (process is not null)
            {
                if (!process.HasExited)
                {
                    process.Kill();
                    process.WaitForExit(5000);
                }

                process.Dispose();
            }

            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    private static void Append(StringBuilder log, string? line)
    {
        if (line is not null)
        {
            lock (log)
            {
                log.AppendLine(line);
            }
        }
    }

    private static async Task<string> HtpasswdLineAsync(RegistryCredentials credentials, CancellationToken cancellationToken)
    {
        // distribution's htpasswd auth accepts bcrypt only (registry/auth/htpasswd).
        var psi = new ProcessStartInfo(RegistryPrerequisites.HtpasswdProgram)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-Bbn", credentials.Username, credentials.Password })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi) ?? throw new RegistryStartException("could not start htpasswd");
        var stdout = p.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(cancellationToken);
        await p.WaitForExitAsync(cancellationToken);
        return p.ExitCode == 0 ? await stdout : throw new RegistryStartException($"htpasswd failed ({p.ExitCode}): {await stderr}");
    }

    private async Task WaitUntilServingAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
        var expected = Credentials is null ? HttpStatusCode.OK : HttpStatusCode.Unauthorized;
        var clock = Stopwatch.StartNew();
        string? lastError = null;
        while (clock.Elapsed < StartTimeout)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                await _process.WaitForExitAsync(cancellationToken); // drains the log readers
                throw new RegistryStartException($"docker-registry exited with {_process.ExitCode} before serving on {Host}; its log:\n{Log}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri(Url, "/v2/"), cancellationToken);
                if (response.StatusCode == expected)
                {
                    return;
                }

                lastError = $"GET /v2/ answered {(int)response.StatusCode}";
            }
            catch (HttpRequestException e)
            {
                lastError = e.Message;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastError = "GET /v2/ timed out";
            }

            await Task.Delay(50, cancellationToken);
        }

        throw new RegistryStartException($"docker-registry did not serve {Url}v2/ within {StartTimeout.TotalSeconds:0} s (last: {lastError}); its log:\n{Log}");
    }
}

/// <summary>The registry could not be started; the message carries its log.</summary>
public sealed class RegistryStartException(string message) : Exception(message);
