import CNFSShims
import Glibc

/// The identity a file-system call runs with: the caller's uid, gid and supplementary groups
/// after squashing. Applied to the calling thread only (setfsuid, setfsgid and setgroups as
/// raw system calls, as NFS-Ganesha does; glibc's wrappers would change every thread), so the
/// kernel's own permission checks, ACLs included, apply to each call as they would to a local
/// process of that user, and new files are owned by the caller.
public struct CallerIdentity: Hashable, Sendable {
    public var uid: UInt32
    public var gid: UInt32
    public var groups: [UInt32]

    public init(uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    public static let root = CallerIdentity(uid: 0, gid: 0, groups: [])

    /// Runs `body` on this thread as this identity, then returns the thread to root.
    /// (When fsuid leaves 0 the kernel drops the file-system capabilities from the thread's
    /// effective set, and raises them again when it returns to 0.)
    public func apply<T>(_ body: () throws -> T) throws -> T {
        guard self != .root else { return try body() }
        let ok = groups.withUnsafeBufferPointer { cnfs_thread_setgroups($0.count, $0.baseAddress) } == 0
        guard ok else { throw StoreError(errno: errno, operation: "setgroups") }
        _ = cnfs_thread_setfsgid(gid)
        _ = cnfs_thread_setfsuid(uid)
        defer { Self.root.restore() }
        return try body()
    }

    func restore() {
        _ = cnfs_thread_setfsuid(0)
        _ = cnfs_thread_setfsgid(0)
        _ = cnfs_thread_setgroups(0, nil)
    }

    /// Runs `body` with root's file-system identity on this thread, then returns to the
    /// identity the thread had (for the owner override and for the server's own bookkeeping).
    public static func asRoot<T>(_ body: () throws -> T) rethrows -> T {
        let (uid, gid) = current
        guard uid != 0 || gid != 0 else { return try body() }
        _ = cnfs_thread_setfsuid(0)
        _ = cnfs_thread_setfsgid(0)
        defer {
            _ = cnfs_thread_setfsgid(gid)
            _ = cnfs_thread_setfsuid(uid)
        }
        return try body()
    }

    /// The identity the calling thread has now (fsuid and fsgid, as the thread last set them:
    /// no system call).
    public static var current: (uid: UInt32, gid: UInt32) {
        (cnfs_thread_fsuid(), cnfs_thread_fsgid())
    }
}

/// The identity of the call running on this thread, for code that must know it (the
/// descriptor cache keys descriptors by it, so one caller never uses another's descriptor).
enum ThreadIdentity {
    static var key: UInt64 {
        let (uid, gid) = CallerIdentity.current
        return key(uid: uid, gid: gid)
    }

    /// The key of `caller`'s descriptors (as `key` on a thread that runs as `caller`), or of
    /// this thread's identity when no caller is given.
    static func key(for caller: CallerIdentity?) -> UInt64 {
        caller.map { key(uid: $0.uid, gid: $0.gid) } ?? key
    }

    private static func key(uid: UInt32, gid: UInt32) -> UInt64 {
        UInt64(uid) << 32 | UInt64(gid)
    }
}
