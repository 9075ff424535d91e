using Matchlock.Core.Images;
using Matchlock.Core.Sandboxes;
using Matchlock.Rpc;

namespace Matchlock.Sdk.Tests;

/// <summary>
/// The in-process transport drives Matchlock's real <see cref="RpcServer"/> over in-memory pipes.
/// These tests stop before a VM would boot: they prove the wiring and the server's refusals
/// reach the caller as the right exceptions.
/// </summary>
public sealed class InProcessTransportTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("matchlock-sdk-inproc-");
    private readonly List<string> _imagesAsked = [];

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact(Timeout = Fake.Timeout)]
    public async Task The_real_server_refuses_a_mount_of_a_missing_folder_as_invalid_params()
    {
        var options = Fake.Busybox with { Workspace = "/workspace", Mounts = new Dictionary<string, VfsMount> { ["/workspace"] = VfsMount.HostDirectory("/nonexistent-matchlock-folder") } };
        var error = await Assert.ThrowsAsync<MatchlockInvalidRequestException>(() => MatchlockClient.LaunchAsync(options, Client(), Fake.Token));
        Assert.Equal(MatchlockRpcException.InvalidParams, error.Code);
        Assert.Empty(_imagesAsked); // refused while reading the config, before any image work
    }

    [Fact(Timeout = Fake.Timeout)]
    public async Task The_hosts_image_lookup_is_what_the_server_calls_and_its_failure_reaches_the_caller()
    {
        var error = await Assert.ThrowsAnyAsync<MatchlockRpcException>(() => MatchlockClient.LaunchAsync(Fake.Busybox, Client(), Fake.Token));
        Assert.Contains("no images in this test", error.Message, StringComparison.Ordinal);
        Assert.Equal(["busybox"], _imagesAsked);
    }

    private MatchlockClientOptions Client() => new()
    {
        Transport = MatchlockTransport.InProcess(new RpcEnvironment
        {
            Sandboxes = SandboxEnvironment.CreateDefault() with
            {
                Images = new ImageStore(Path.Combine(_dir.FullName, "images")),
                VmsDir = Path.Combine(_dir.FullName, "vms"),
                CacheDir = Path.Combine(_dir.FullName, "cache"),
                StatePath = null,
            },
            EnsureImage = (reference, _) =>
            {
                lock (_imagesAsked)
                {
                    _imagesAsked.Add(reference);
                }

                throw new InvalidOperationException($"no images in this test ({reference})");
            },
        }),
    };
}
