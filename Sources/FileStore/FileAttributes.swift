import Glibc
import CNFSShims

public enum FileType: Hashable, Sendable {
    case regular, directory, blockDevice, characterDevice, symlink, socket, fifo

    init?(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFBLK: self = .blockDevice
        case S_IFCHR: self = .characterDevice
        case S_IFLNK: self = .symlink
        case S_IFSOCK: self = .socket
        case S_IFIFO: self = .fifo
        default: return nil
        }
    }
}

public struct FileTime: Hashable, Sendable, Comparable {
    public var seconds: Int64
    public var nanoseconds: UInt32
    public init(seconds: Int64, nanoseconds: UInt32) { self.seconds = seconds; self.nanoseconds = nanoseconds }
    init(_ ts: timespec) { self.init(seconds: Int64(ts.tv_sec), nanoseconds: UInt32(ts.tv_nsec)) }
    public var timespec: Glibc.timespec { Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds)) }
    public static func < (a: FileTime, b: FileTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}

/// What the store knows of a file: stat(2), with the server's persistent file id in place of
/// the inode number.
public struct FileAttributes: Hashable, Sendable {
    public var type: FileType
    /// Permission bits including set-id and sticky bits (st_mode & 07777).
    public var mode: UInt32
    public var nlink: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    /// Bytes of storage actually used (st_blocks * 512).
    public var used: UInt64
    public var rdevMajor: UInt32
    public var rdevMinor: UInt32
    public var fileID: UInt64
    public var inode: UInt64
    public var atime: FileTime
    public var mtime: FileTime
    public var ctime: FileTime

    init?(_ st: stat, fileID: UInt64) {
        guard let type = FileType(mode: st.st_mode) else { return nil }
        self.type = type
        self.mode = UInt32(st.st_mode & 0o7777)
        self.nlink = UInt32(clamping: st.st_nlink)
        self.uid = st.st_uid
        self.gid = st.st_gid
        self.size = UInt64(st.st_size)
        self.used = UInt64(st.st_blocks) * 512
        self.rdevMajor = cnfs_major(UInt64(st.st_rdev))
        self.rdevMinor = cnfs_minor(UInt64(st.st_rdev))
        self.fileID = fileID
        self.inode = UInt64(st.st_ino)
        self.atime = FileTime(st.st_atim)
        self.mtime = FileTime(st.st_mtim)
        self.ctime = FileTime(st.st_ctim)
    }
}

/// Changes for `FileStore.setAttributes` (NFS sattr3 without the wire).
public struct AttributeChanges: Hashable, Sendable {
    public enum TimeChange: Hashable, Sendable {
        case unchanged
        case now
        case set(FileTime)
    }
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var atime: TimeChange = .unchanged
    public var mtime: TimeChange = .unchanged

    public init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: UInt64? = nil,
                atime: TimeChange = .unchanged, mtime: TimeChange = .unchanged) {
        self.mode = mode; self.uid = uid; self.gid = gid; self.size = size; self.atime = atime; self.mtime = mtime
    }

    public var isEmpty: Bool {
        mode == nil && uid == nil && gid == nil && size == nil && atime == .unchanged && mtime == .unchanged
    }
}

/// statvfs(3) in bytes and files.
public struct FileSystemStatistics: Hashable, Sendable {
    public var totalBytes: UInt64
    public var freeBytes: UInt64
    public var availableBytes: UInt64
    public var totalFiles: UInt64
    public var freeFiles: UInt64
    public var availableFiles: UInt64
    public var maxNameLength: UInt32
}
