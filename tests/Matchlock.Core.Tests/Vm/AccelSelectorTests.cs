using Matchlock.Core.Vm;

namespace Matchlock.Core.Tests.Vm;

public sealed class AccelSelectorTests
{
    private sealed class FakeHost : IAccelHostView
    {
        public string? Env { get; set; }

        public string? KvmError { get; set; }

        public bool IsKvmPvmLoaded { get; set; }

        public string? BootId { get; set; } = "boot-1";

        public string? Cache { get; set; }

        public bool ProbeResult { get; set; } = true;

        public int Probes { get; private set; }

        public string? GetEnvironmentVariable(string name) => name == AccelSelector.EnvVar ? Env : null;

        public string? TryOpenKvm() => KvmError;

        public string? ReadProbeCache() => Cache;

        public void WriteProbeCache(string content) => Cache = content;

        public Task<bool> ProbeKvmAsync(CancellationToken cancellationToken)
        {
            Probes++;
            return Task.FromResult(ProbeResult);
        }
    }

    private static Task<AccelChoice> Select(FakeHost host, AccelMode? mode = null) =>
        new AccelSelector(host).SelectAsync(mode, TestContext.Current.CancellationToken);

    [Fact]
    public async Task Auto_on_pvm_falls_back_to_tcg_with_the_notice()
    {
        var host = new FakeHost { IsKvmPvmLoaded = true };
        var choice = await Select(host);
        Assert.Equal(new AccelChoice(VmAccel.Tcg, "matchlock: KVM unavailable (kvm_pvm); using TCG software emulation — slower"), choice);
        Assert.Equal(0, host.Probes);
    }

    [Fact]
    public async Task Auto_without_dev_kvm_falls_back_to_tcg()
    {
        var choice = await Select(new FakeHost { KvmError = "No such file or directory" });
        Assert.Equal(VmAccel.Tcg, choice.Accel);
        Assert.Contains("/dev/kvm: No such file or directory", choice.Notice, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Auto_with_real_kvm_probes_once_per_boot()
    {
        var host = new FakeHost();
        Assert.Equal(new AccelChoice(VmAccel.Kvm, null), await Select(host));
        Assert.Equal(new AccelChoice(VmAccel.Kvm, null), await Select(host));
        Assert.Equal(1, host.Probes);

        host.BootId = "boot-2"; // rebooted: the cached answer no longer counts
        host.ProbeResult = false;
        var choice = await Select(host);
        Assert.Equal(VmAccel.Tcg, choice.Accel);
        Assert.Contains("probe boot failed", choice.Notice, StringComparison.Ordinal);
        Assert.Equal(2, host.Probes);
        Assert.Equal("boot-2 fail\n", host.Cache);
    }

    [Fact]
    public async Task Explicit_kvm_when_unusable_is_an_error_not_a_fallback()
    {
        var ex = await Assert.ThrowsAsync<AccelUnavailableException>(() => Select(new FakeHost { IsKvmPvmLoaded = true }, AccelMode.Kvm));
        Assert.Contains("kvm_pvm", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--accel tcg", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Explicit_kvm_on_a_good_host_needs_no_probe()
    {
        var host = new FakeHost();
        Assert.Equal(new AccelChoice(VmAccel.Kvm, null), await Select(host, AccelMode.Kvm));
        Assert.Equal(0, host.Probes);
    }

    [Fact]
    public async Task Tcg_is_honoured_silently_and_the_option_beats_the_environment()
    {
        Assert.Equal(new AccelChoice(VmAccel.Tcg, null), await Select(new FakeHost(), AccelMode.Tcg));
        Assert.Equal(new AccelChoice(VmAccel.Tcg, null), await Select(new FakeHost { Env = "TCG" }));
        Assert.Equal(new AccelChoice(VmAccel.Kvm, null), await Select(new FakeHost { Env = "tcg" }, AccelMode.Auto));
    }

    [Fact]
    public async Task Bad_environment_value_names_the_variable()
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Select(new FakeHost { Env = "fast" }));
        Assert.StartsWith("MATCHLOCK_ACCEL: unknown accelerator 'fast'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_mode_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => AccelSelector.ParseMode("hvf"));
        Assert.Equal(AccelMode.Auto, AccelSelector.ParseMode(" Auto "));
    }
}
