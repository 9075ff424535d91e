namespace Matchlock.Integration.Tests.Registry;

/// <summary>
/// A <see cref="LocalRegistry"/> for one test class with <see cref="TestImageCatalog.Tags"/>
/// pushed and <see cref="TestImageCatalog.Tampered"/>'s top layer corrupted in storage. When the
/// registry tools are missing it stays empty; tests report that through RegistryPrerequisites.
/// </summary>
public class RegistryFixture : IAsyncLifetime
{
    private LocalRegistry? _registry;

    public LocalRegistry Registry => _registry ?? throw new InvalidOperationException(
        RegistryPrerequisites.MissingForFixtures() ?? "the registry fixture did not start");

    /// <summary>Null: no auth. The auth variant overrides it.</summary>
    protected virtual RegistryCredentials? Credentials => null;

    /// <summary><c>127.0.0.1:PORT/&lt;repositoryAndTag&gt;</c> on this registry.</summary>
    public string Ref(string repositoryAndTag) => Registry.Host + "/" + repositoryAndTag;

    public async ValueTask InitializeAsync()
    {
        if (RegistryPrerequisites.MissingForFixtures() is not null)
        {
            return;
        }

        _registry = await LocalRegistry.StartAsync(Credentials);
        using var pusher = _registry.CreatePusher();
        foreach (var (repoTag, image) in TestImageCatalog.Tags)
        {
            var colon = repoTag.LastIndexOf(':');
            await pusher.PushAsync(repoTag[..colon], repoTag[(colon + 1)..], image);
        }

        _registry.CorruptBlob(TestImageCatalog.Tampered.Layers[^1].Digest);
    }

    public async ValueTask DisposeAsync()
    {
        if (_registry is not null)
        {
            await _registry.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>The same registry behind htpasswd (bcrypt) auth with <see cref="User"/>.</summary>
public sealed class AuthRegistryFixture : RegistryFixture
{
    public static RegistryCredentials User { get; } = new("tester", "s3cret-pass");

    protected override RegistryCredentials? Credentials => User;
}
