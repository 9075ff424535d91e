using Matchlock.Core.Images;

namespace Matchlock.Core.Tests.Images;

/// <summary>A private temporary directory, deleted (without following symlinks) on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory("matchlock-test-").FullName;
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            FileTree.DeleteTree(Path);
        }
    }
}
