using System.CommandLine;
using System.Text.Json;
using Matchlock.Core;
using Matchlock.Core.Kernel;
using Matchlock.Core.Sandboxes;
using Matchlock.Core.Vm;

namespace Matchlock.Cli.Commands;

/// <summary>
/// <c>matchlock diagnose [--json]</c>: checks what running a sandbox needs (QEMU, kernel, guest
/// binary, acceleration) and builds the cached initramfs so the first run does not pay for it.
/// </summary>
internal static class DiagnoseCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var command = new Command("diagnose", "Check the host and prepare the guest kernel") { json };
        command.SetAction(async (parse, ct) =>
        {
            var checks = new List<(string Name, bool Ok, string Detail)>();
            var backend = new QemuMicrovmBackend();
            checks.Add(("qemu", backend.IsAvailable, backend.IsAvailable ? "qemu-system-x86_64 found" : "qemu-system-x86_64 not found; run ./setup.sh"));

            GuestKernel? kernel = null;
            try
            {
                kernel = new KernelProvider().Find();
                checks.Add(("kernel", true, $"{kernel.KernelPath} ({kernel.Version})"));
            }
            catch (KernelNotFoundException ex)
            {
                checks.Add(("kernel", false, ex.Message));
            }

            string? guest = null;
            try
            {
                guest = GuestBinary.Locate();
                checks.Add(("guest", true, guest));
            }
            catch (SandboxStartException ex)
            {
                checks.Add(("guest", false, ex.Message));
            }

            if (kernel is not null && guest is not null)
            {
                try
                {
                    var boot = await new InitramfsBuilder(kernel, MatchlockPaths.CacheDir).GetOrBuildAsync(guest, ct);
                    checks.Add(("initramfs", true, boot.InitramfsPath));
                }
                catch (Exception ex) when (ex is IOException or ModuleResolutionException or UnauthorizedAccessException)
                {
                    checks.Add(("initramfs", false, ex.Message));
                }

                try
                {
                    var accel = await new AccelSelector(kernel.KernelPath, MatchlockPaths.CacheDir).SelectAsync(null, ct);
                    checks.Add(("accel", true, accel.Accel.ToString().ToLowerInvariant() + (accel.Notice is { } n ? $" ({n})" : "")));
                }
                catch (AccelUnavailableException ex)
                {
                    checks.Add(("accel", false, ex.Message));
                }
            }

            checks.Add(("home", true, MatchlockPaths.Home));
            if (parse.GetValue(json))
            {
                var doc = checks.ToDictionary(c => c.Name, c => new Dictionary<string, object> { ["ok"] = c.Ok, ["detail"] = c.Detail });
                Console.WriteLine(JsonSerializer.Serialize(doc, CliJsonContext.Default.DictionaryStringDictionaryStringObject));
            }
            else
            {
                foreach (var (name, ok, detail) in checks)
                {
                    Console.WriteLine($"{(ok ? "ok  " : "FAIL")}  {name,-10} {detail}");
                }
            }

            return checks.All(c => c.Ok) ? 0 : ExitCodes.MatchlockError;
        });
        return command;
    }
}
