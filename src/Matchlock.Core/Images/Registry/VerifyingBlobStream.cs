using System.Security.Cryptography;

namespace Matchlock.Core.Images.Registry;

/// <summary>
/// A blob body that yields exactly the descriptor's size and checks it as it goes: the SHA-256 is
/// computed over every byte passed on, and the read that delivers the last byte first makes sure the
/// body ends there and hashes to the digest, so a caller that reads to the end cannot miss a bad blob
/// even if it never asks for EOF. Owns (and disposes) the HTTP response.
/// </summary>
internal sealed class VerifyingBlobStream : ReadOnlyStream
{
    private readonly HttpResponseMessage _response;
    private readonly Stream _body;
    private readonly BlobDescriptor _blob;
    private readonly string _image;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _remaining;
    private bool _verified;

    public VerifyingBlobStream(HttpResponseMessage response, Stream body, BlobDescriptor blob, string image)
    {
        _response = response;
        _body = body;
        _blob = blob;
        _image = image;
        _remaining = blob.Size;
    }

    public override int Read(Span<byte> buffer)
    {
        if (_remaining == 0)
        {
            Verify(Probe());
            return 0;
        }

        int n;
        try
        {
            n = _body.Read(buffer[..(int)Math.Min(buffer.Length, _remaining)]);
        }
        catch (IOException e)
        {
            throw Cut(e);
        }

        Account(buffer[..n]);
        if (_remaining == 0)
        {
            Verify(Probe());
        }

        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_remaining == 0)
        {
            Verify(await ProbeAsync(cancellationToken));
            return 0;
        }

        int n;
        try
        {
            n = await _body.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken);
        }
        catch (IOException e)
        {
            throw Cut(e);
        }

        Account(buffer.Span[..n]);
        if (_remaining == 0)
        {
            Verify(await ProbeAsync(cancellationToken));
        }

        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            _body.Dispose();
            _response.Dispose();
        }

        base.Dispose(disposing);
    }

    private int Probe()
    {
        if (_verified)
        {
            return 0;
        }

        try
        {
            return _body.Read(stackalloc byte[1]);
        }
        catch (IOException e)
        {
            throw Cut(e);
        }
    }

    private async ValueTask<int> ProbeAsync(CancellationToken cancellationToken)
    {
        if (_verified)
        {
            return 0;
        }

        var one = new byte[1];
        try
        {
            return await _body.ReadAsync(one, cancellationToken);
        }
        catch (IOException e)
        {
            throw Cut(e);
        }
    }

    private void Account(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            throw new RegistryException(
                RegistryErrorKind.Truncated,
                $"{_image}: blob {_blob.Digest} ended after {_blob.Size - _remaining} of {_blob.Size} bytes; the connection was cut or the registry is broken, pull again");
        }

        _hash.AppendData(data);
        _remaining -= data.Length;
    }

    /// <summary>Called once all <see cref="BlobDescriptor.Size"/> bytes are in, with what one more read returned.</summary>
    private void Verify(int extra)
    {
        if (_verified)
        {
            return;
        }

        if (extra > 0)
        {
            throw new RegistryException(
                RegistryErrorKind.TooLarge,
                $"{_image}: blob {_blob.Digest} is longer than the {_blob.Size} bytes its manifest says; the registry serves different content");
        }

        var actual = "sha256:" + Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (actual != _blob.Digest)
        {
            throw new RegistryException(
                RegistryErrorKind.DigestMismatch,
                $"{_image}: blob {_blob.Digest} does not match its digest (the bytes hash to {actual}); the download was corrupted or tampered with, pull again");
        }

        _verified = true;
    }

    private RegistryException Cut(IOException e) => new(
        RegistryErrorKind.Truncated,
        $"{_image}: blob {_blob.Digest} was cut off after {_blob.Size - _remaining} of {_blob.Size} bytes ({e.Message}); pull again",
        e);
}
