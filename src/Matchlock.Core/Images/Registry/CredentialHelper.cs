using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// Runs a Docker credential helper (<c>docker-credential-NAME get</c>, server URL on stdin, JSON
/// <c>{"Username","Secret"}</c> on stdout), per the docker-credential-helpers protocol. A user name of
/// <c>&lt;token&gt;</c> means the secret is an identity token. The helper is looked up on the PATH of the
/// environment given, so tests can point it at a script in a temporary directory.
/// </summary>
internal sealed class CredentialHelper(Func<string, string?> environment)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public async Task<RegistryCredential?> GetAsync(string name, string serverUrl, string origin, CancellationToken cancellationToken)
    {
        var program = "docker-credential-" + name;
        var path = Locate(program) ?? throw new RegistryException(
            RegistryErrorKind.Credentials,
            $"credential helper {program} (from {origin}) is not installed or not on PATH; install it, or remove it from the Docker config to pull anonymously");

        var info = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("get");
        info.Environment["PATH"] = environment("PATH") ?? "";

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new RegistryException(RegistryErrorKind.Credentials, $"cannot run credential helper {path} (from {origin}): {e.Message}", e);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await WriteServerUrlAsync(process, serverUrl, timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            await Task.WhenAll(stdout, stderr);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            cancellationToken.ThrowIfCancellationRequested();
            throw new RegistryException(
                RegistryErrorKind.Credentials, $"credential helper {program} (from {origin}) did not answer within {Timeout.TotalSeconds:0} s");
        }

        var output = await stdout;
        if (process.ExitCode != 0)
        {
            // The helpers print this (with exit 1) for "no entry for that server": pull anonymously then.
            if (output.Contains("credentials not found", StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            var message = (await stderr).Trim() is { Length: > 0 } err ? err : output.Trim();
            throw new RegistryException(
                RegistryErrorKind.Credentials, $"credential helper {program} (from {origin}) failed with exit code {process.ExitCode}: {message}");
        }

        CredentialHelperOutputDto? answer;
        try
        {
            answer = JsonSerializer.Deserialize(output, RegistryJsonContext.Default.CredentialHelperOutputDto);
        }
        catch (JsonException e)
        {
            // Not echoing the output: it may hold the secret.
            throw new RegistryException(RegistryErrorKind.Credentials, $"credential helper {program} (from {origin}) printed something that is not JSON", e);
        }

        if (answer?.Secret is not { Length: > 0 } secret)
        {
            return null;
        }

        var source = $"{program} ({origin})";
        return answer.Username == "<token>" || string.IsNullOrEmpty(answer.Username)
            ? RegistryCredential.FromIdentityToken(secret, null, source)
            : RegistryCredential.FromPassword(answer.Username, secret, source);
    }

    private static async Task WriteServerUrlAsync(Process process, string serverUrl, CancellationToken cancellationToken)
    {
        try
        {
            await process.StandardInput.WriteAsync(serverUrl.AsMemory(), cancellationToken);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // EPIPE: the helper exited without reading its input. Its exit code and output, read
            // next, say why; this write failing adds nothing.
        }
    }

    private string? Locate(string program)
    {
        foreach (var dir in (environment("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
