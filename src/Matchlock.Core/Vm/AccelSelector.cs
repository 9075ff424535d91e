namespace Matchlock.Core.Vm;

/// <summary>
/// Chooses KVM or TCG (docs/ARCHITECTURE.md D2). <c>auto</c> uses KVM only when /dev/kvm opens, it is not
/// PVM (<c>/sys/module/kvm_pvm</c>), and a probe boot under KVM succeeds (cached per host boot);
/// otherwise TCG, with a notice for the CLI to print. <c>kvm</c> never falls back silently.
/// </summary>
public sealed class AccelSelector
{
    public const string EnvVar = "MATCHLOCK_ACCEL";

    private readonly IAccelHostView _host;

    /// <summary>Caches the probe under <see cref="MatchlockPaths.CacheDir"/>.</summary>
    public AccelSelector(string kernelPath)
        : this(kernelPath, MatchlockPaths.CacheDir)
    {
    }

    /// <param name="kernelPath">Kernel the probe boots (the guest kernel itself: it is the one that must work).</param>
    /// <param name="cacheDir">Matchlock's cache root; the probe result goes to <c>accel/kvm-probe</c>.</param>
    /// <param name="qemuBinary">QEMU used by the probe.</param>
    public AccelSelector(string kernelPath, string cacheDir, string qemuBinary = "qemu-system-x86_64")
        : this(new LinuxAccelHostView(kernelPath, cacheDir, qemuBinary))
    {
    }

    internal AccelSelector(IAccelHostView host)
    {
        _host = host;
    }

    /// <summary>Parses <c>auto|kvm|tcg</c> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Any other value.</exception>
    public static AccelMode ParseMode(string value) => value.Trim().ToLowerInvariant() switch
    {
        "auto" => AccelMode.Auto,
        "kvm" => AccelMode.Kvm,
        "tcg" => AccelMode.Tcg,
        _ => throw new ArgumentException($"unknown accelerator '{value}'; use auto, kvm or tcg", nameof(value)),
    };

    /// <summary>
    /// Picks the accelerator: <paramref name="requested"/> (the <c>--accel</c> option) wins, then
    /// <c>MATCHLOCK_ACCEL</c>, then auto.
    /// </summary>
    /// <exception cref="AccelUnavailableException"><c>kvm</c> was asked for and cannot work here.</exception>
    public async Task<AccelChoice> SelectAsync(AccelMode? requested, CancellationToken cancellationToken)
    {
        var mode = requested ?? AccelMode.Auto;
        if (requested is null && _host.GetEnvironmentVariable(EnvVar) is { Length: > 0 } env)
        {
            try
            {
                mode = ParseMode(env);
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"{EnvVar}: {ex.Message}", ex);
            }
        }

        if (mode == AccelMode.Tcg)
        {
            return new AccelChoice(VmAccel.Tcg, null);
        }

        var reason = StaticReason();
        if (mode == AccelMode.Kvm)
        {
            // An explicit request gets no probe (it costs a boot): the user says KVM works; if
            // it does not, the VM start fails with QEMU's own error.
            return reason is null
                ? new AccelChoice(VmAccel.Kvm, null)
                : throw new AccelUnavailableException($"--accel kvm: KVM is unusable here ({reason}); use --accel tcg or auto");
        }

        if (reason is null && !await ProbeCachedAsync(cancellationToken))
        {
            reason = "probe boot failed";
        }

        return reason is null
            ? new AccelChoice(VmAccel.Kvm, null)
            : new AccelChoice(VmAccel.Tcg, $"matchlock: KVM unavailable ({reason}); using TCG software emulation — slower");
    }

    private string? StaticReason()
    {
        if (_host.TryOpenKvm() is { } error)
        {
            return $"/dev/kvm: {error}";
        }

        // docs/PLATFORM.md "Acceleration": PVM accepts KVM_CREATE_VM but stock guests crawl and die, so it is "no KVM".
        return _host.IsKvmPvmLoaded ? "kvm_pvm" : null;
    }

    private async Task<bool> ProbeCachedAsync(CancellationToken cancellationToken)
    {
        var bootId = _host.BootId;
        if (bootId is not null && _host.ReadProbeCache() is { } cached)
        {
            var parts = cached.Trim().Split(' ');
            if (parts.Length == 2 && parts[0] == bootId)
            {
                return parts[1] == "ok";
            }
        }

        var ok = await _host.ProbeKvmAsync(cancellationToken);
        if (bootId is not null)
        {
            _host.WriteProbeCache($"{bootId} {(ok ? "ok" : "fail")}\n");
        }

        return ok;
    }
}
