using Matchlock.Core.Images;
using Matchlock.Core.Sandboxes;

namespace Matchlock.Integration.Tests;

/// <summary>One sandbox booted through the library and shared by the checks of a class.</summary>
public sealed class SharedSandbox : IAsyncLifetime
{
    private readonly MatchlockHome _home = new();

    public Sandbox? Sandbox { get; private set; }

    public async ValueTask InitializeAsync()
    {
        await _home.InitializeAsync();
        if (!_home.Ready)
        {
            return;
        }

        var env = SandboxEnvironment.CreateDefault() with
        {
            Images = new ImageStore(Path.Combine(_home.Root, "images")),
            VmsDir = _home.VmsDir,
            StatePath = Path.Combine(_home.Root, "state.db"),
        };
        Sandbox = await Sandbox.CreateAsync(new SandboxSpec { Image = "busybox", MemoryMb = 256 }, env, CancellationToken.None);
    }

    public Sandbox Get()
    {
        VmPrerequisites.Ensure();
        return Sandbox ?? throw new InvalidOperationException("the shared sandbox did not start");
    }

    public async ValueTask DisposeAsync()
    {
        if (Sandbox is not null)
        {
            var dir = Sandbox.Directory;
            await Sandbox.DisposeAsync();
            Assert.False(Directory.Exists(dir), $"{dir} was left behind");
        }

        await _home.DisposeAsync();
    }
}
