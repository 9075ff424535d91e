using System.Net;
using System.Text;
using Matchlock.Core.Images;
using Matchlock.Core.Images.Registry;

namespace Matchlock.Core.Tests.Registry;

/// <summary>OpenBlobAsync/GetBlobAsync: the stream yields exactly the descriptor's bytes or throws.</summary>
public sealed class BlobStreamTests : IDisposable
{
    private static readonly byte[] Content = Encoding.UTF8.GetBytes(new string('x', 200_000));
    private static readonly ImageReference Image = ImageReference.Parse(FakeRegistry.Host + "/app:1.0");

    private readonly FakeRegistry _registry = new();
    private readonly BlobDescriptor _blob;
    private readonly RegistryClient _client;

    public BlobStreamTests()
    {
        _blob = new BlobDescriptor("application/vnd.oci.image.layer.v1.tar", _registry.AddBlob(Content), Content.Length);
        _client = new RegistryClient(new RegistryClientOptions { HttpHandler = _registry, Credentials = new FixedCredentials(null), RetryDelay = TimeSpan.Zero });
    }

    public void Dispose()
    {
        _client.Dispose();
        _registry.Dispose();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private void Serve(HttpContent content) =>
        _registry.Fault = r => r.RequestUri!.AbsolutePath.Contains("/blobs/", StringComparison.Ordinal)
            ? new HttpResponseMessage(HttpStatusCode.OK) { Content = content }
            : null;

    private async Task<byte[]> ReadAllAsync()
    {
        await using var stream = await _client.OpenBlobAsync(Image, _blob, Ct);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, 65536, Ct);
        return copy.ToArray();
    }

    [Fact]
    public async Task A_good_blob_streams_through_unchanged()
    {
        Assert.Equal(Content, await ReadAllAsync());
    }

    [Fact]
    public async Task A_good_blob_also_reads_synchronously()
    {
        await using var stream = await _client.OpenBlobAsync(Image, _blob, Ct);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        Assert.Equal(Content, copy.ToArray());
    }

    [Fact]
    public async Task Tampered_bytes_are_a_DigestMismatch()
    {
        var tampered = (byte[])Content.Clone();
        tampered[1000] ^= 1;
        Serve(new ByteArrayContent(tampered));

        var e = await Assert.ThrowsAsync<RegistryException>(ReadAllAsync);

        Assert.Equal(RegistryErrorKind.DigestMismatch, e.Failure);
        Assert.Contains(_blob.Digest, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_that_ends_early_is_Truncated()
    {
        Serve(new UnknownLengthContent(Content[..150_000]));

        var e = await Assert.ThrowsAsync<RegistryException>(ReadAllAsync);

        Assert.Equal(RegistryErrorKind.Truncated, e.Failure);
        Assert.Contains("after 150000 of 200000 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_longer_than_the_descriptor_is_TooLarge()
    {
        Serve(new UnknownLengthContent([.. Content, .. "extra"u8.ToArray()]));

        var e = await Assert.ThrowsAsync<RegistryException>(ReadAllAsync);

        Assert.Equal(RegistryErrorKind.TooLarge, e.Failure);
    }

    [Theory]
    [InlineData(100, RegistryErrorKind.Truncated)]
    [InlineData(300_000, RegistryErrorKind.TooLarge)]
    public async Task A_Content_Length_that_contradicts_the_descriptor_is_refused_before_reading(long length, RegistryErrorKind kind)
    {
        var content = new ByteArrayContent(Content);
        content.Headers.ContentLength = length;
        Serve(content);

        var e = await Assert.ThrowsAsync<RegistryException>(() => _client.OpenBlobAsync(Image, _blob, Ct));

        Assert.Equal(kind, e.Failure);
        Assert.Contains($"Content-Length {length}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetBlob_reads_small_blobs_verified_and_refuses_large_ones_up_front()
    {
        Assert.Equal(Content, await _client.GetBlobAsync(Image, _blob, Ct));
        var empty = new BlobDescriptor("application/vnd.oci.image.config.v1+json", _registry.AddBlob([]), 0);
        Assert.Empty(await _client.GetBlobAsync(Image, empty, Ct));

        var requests = _registry.Requests.Count;
        var e = await Assert.ThrowsAsync<RegistryException>(
            () => _client.GetBlobAsync(Image, _blob with { Size = 9 * 1024 * 1024 }, Ct));
        Assert.Equal(RegistryErrorKind.TooLarge, e.Failure);
        Assert.Equal(requests, _registry.Requests.Count);
    }

    [Fact]
    public async Task An_unknown_blob_is_NotFound()
    {
        var missing = new BlobDescriptor(_blob.MediaType, "sha256:" + new string('1', 64), 3);

        var e = await Assert.ThrowsAsync<RegistryException>(() => _client.OpenBlobAsync(Image, missing, Ct));

        Assert.Equal(RegistryErrorKind.NotFound, e.Failure);
        Assert.Contains("BLOB_UNKNOWN", e.Message, StringComparison.Ordinal);
    }
}
