namespace Matchlock.Core.Vfs.Fuse;

/// <summary>The Linux FUSE kernel protocol's request opcodes (include/uapi/linux/fuse.h), those the server knows.</summary>
internal enum FuseOpcode : uint
{
    Lookup = 1,
    Forget = 2,
    GetAttr = 3,
    SetAttr = 4,
    ReadLink = 5,
    Symlink = 6,
    MkNod = 8,
    MkDir = 9,
    Unlink = 10,
    RmDir = 11,
    Rename = 12,
    Link = 13,
    Open = 14,
    Read = 15,
    Write = 16,
    StatFs = 17,
    Release = 18,
    Fsync = 20,
    SetXattr = 21,
    GetXattr = 22,
    ListXattr = 23,
    RemoveXattr = 24,
    Flush = 25,
    Init = 26,
    OpenDir = 27,
    ReadDir = 28,
    ReleaseDir = 29,
    FsyncDir = 30,
    GetLk = 31,
    SetLk = 32,
    SetLkW = 33,
    Access = 34,
    Create = 35,
    Interrupt = 36,
    Destroy = 38,
    BatchForget = 42,
    Fallocate = 43,
    ReadDirPlus = 44,
    Rename2 = 45,
    Lseek = 46,
}

/// <summary>Constants of the protocol this server speaks.</summary>
internal static class FuseConstants
{
    /// <summary>The protocol major version; a kernel with another one is refused at INIT.</summary>
    public const uint KernelVersion = 7;

    /// <summary>The minor version we answer with: 7.31 (Linux 5.4) has everything we use.</summary>
    public const uint KernelMinorVersion = 31;

    public const int InHeaderSize = 40;
    public const int OutHeaderSize = 16;
    public const int AttrSize = 88;
    public const int EntryOutSize = 40 + AttrSize;
    public const int AttrOutSize = 16 + AttrSize;
    public const int OpenOutSize = 16;
    public const int StatFsOutSize = 80;
    public const int InitOutSize = 64;
    public const int DirentHeaderSize = 24;

    /// <summary>Largest name a request may carry (NAME_MAX).</summary>
    public const int MaxName = 255;

    /// <summary>Largest write we accept (announced as max_write at INIT) and read we serve.</summary>
    public const int MaxWrite = 1024 * 1024;

    /// <summary>Largest request we read: a write of <see cref="MaxWrite"/> plus its headers.</summary>
    public const int MaxRequest = MaxWrite + 4096;

    // FUSE_INIT flags (fuse.h).
    public const uint AsyncRead = 1 << 0;
    public const uint PosixLocks = 1 << 1;
    public const uint AtomicOTrunc = 1 << 3;
    public const uint ExportSupport = 1 << 4;
    public const uint BigWrites = 1 << 5;
    public const uint DontMask = 1 << 6;
    public const uint FlockLocks = 1 << 10;
    public const uint DoReaddirplus = 1 << 13;
    public const uint ReaddirplusAuto = 1 << 14;
    public const uint AsyncDio = 1 << 15;
    public const uint ParallelDirops = 1 << 18;
    public const uint MaxPages = 1 << 22;

    // SETATTR valid bits.
    public const uint SetMode = 1 << 0;
    public const uint SetUid = 1 << 1;
    public const uint SetGid = 1 << 2;
    public const uint SetSize = 1 << 3;
    public const uint SetAtime = 1 << 4;
    public const uint SetMtime = 1 << 5;
    public const uint SetFh = 1 << 6;
    public const uint SetAtimeNow = 1 << 7;
    public const uint SetMtimeNow = 1 << 8;
    public const uint SetCtime = 1 << 10;
}
