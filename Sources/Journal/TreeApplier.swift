import CNFSShims
import FileStore
import Glibc

/// Applies journal changes to a directory tree by path: the durable copy at a checkpoint, and
/// the served tree when it is rebuilt or caught up at start.
///
/// Every change is applied so that applying it again, or applying a run of changes to a tree
/// that already has some of them, ends in the same state: a create of a name that exists, a
/// remove or rename of a name that does not, are skipped; writes and attribute changes are
/// plain overwrites. Paths never leave the root and never follow a symlink (openat2 with
/// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), whatever the journal says.
///
/// A tree may also be *ahead* of the first record applied: a copy whose checkpoint was
/// interrupted after some records were applied, a served tree rebuilt from such a copy, or one
/// the OS wrote out partly before a crash. There a create whose name is absent may have been
/// applied already and its file moved on (renamed, linked, its directory renamed); creating it
/// again would make a second file of the same id. With `mayBeAhead`, the ids in the tree are
/// read first, and a create of an id already there is skipped (ids are never reused).
package struct TreeApplier {
    package let root: String
    let rootFD: Int32
    /// The ids in the tree when a tree that may be ahead was opened.
    let presentIDs: Set<UInt64>?
    /// A durable copy's: where the ids of objects created untagged are kept.
    let untagged: UntaggedIdentities.Log?

    /// `untaggedLog`: for a durable copy, where to keep the ids of the objects it creates that
    /// cannot carry a tag (`UntaggedIdentities`).
    package init(root: String, mayBeAhead: Bool = false, untaggedLog: String? = nil) throws {
        try JournalDirectory.makeDirectories(root)
        self.root = root
        rootFD = open(root, O_PATH_ | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw JournalError(.io, "open \(root): errno \(errno)") }
        presentIDs = mayBeAhead ? Self.fileIDs(under: rootFD) : nil
        do {
            untagged = try untaggedLog.map(UntaggedIdentities.Log.init(path:))
        } catch {
            _ = Glibc.close(rootFD)
            throw error
        }
    }

    static func fileIDs(under rootFD: Int32) -> Set<UInt64> {
        var ids: Set<UInt64> = []
        walkTree(rootFD, ()) { entry, _ in
            if let tag = entry.fileIDTag { ids.insert(tag) }
            return ()
        }
        return ids
    }

    package func close() {
        _ = Glibc.close(rootFD)
        untagged?.close()
    }

    /// Makes everything applied so far durable (syncfs of the tree's file system).
    package func sync() throws {
        // syncfs needs a real descriptor, not an O_PATH one.
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(.io, "open \(root): errno \(errno)") }
        defer { _ = Glibc.close(fd) }
        guard cnfs_syncfs(fd) == 0 else { throw JournalError(errno == ENOSPC ? .noSpace : .io, "syncfs \(root): errno \(errno)") }
        try untagged?.sync()
    }

    /// The inode number of the object at `path` in the tree (never following a symlink).
    package func inode(of path: [UInt8]) -> UInt64? {
        try? inParent(path) { dirFD, name -> UInt64? in
            var st = stat()
            return cString(name) { fstatat(dirFD, $0, &st, AT_SYMLINK_NOFOLLOW) } == 0 ? UInt64(st.st_ino) : nil
        } ?? nil
    }

    /// Splits a journal path into its directory and final name, refusing anything that is not
    /// a plain relative path.
    static func split(_ path: [UInt8]) -> (dir: [UInt8], name: [UInt8])? {
        guard !path.isEmpty, isPlainRelativePath(path) else { return nil }
        let parts = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        var dir: [UInt8] = []
        for (i, p) in parts.dropLast().enumerated() {
            if i > 0 { dir.append(UInt8(ascii: "/")) }
            dir += p
        }
        return (dir, Array(parts.last!))
    }

    func cString<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try withCPath(bytes, body)
    }

    /// Runs `body` with a descriptor of the directory holding `path` and the final name, or
    /// returns nil when that directory does not exist (the change is then moot).
    func inParent<T>(_ path: [UInt8], _ body: (Int32, [UInt8]) throws -> T) throws -> T? {
        // The empty path is the export root itself (its attributes can be set).
        if path.isEmpty {
            let fd = dup(rootFD)
            defer { _ = Glibc.close(fd) }
            return try body(fd, [46])
        }
        guard let (dir, name) = Self.split(path) else { throw JournalError(.damaged, "journal path is not a plain relative path") }
        let fd: Int32 = dir.isEmpty ? dup(rootFD)
            : cString(dir) { cnfs_open_beneath(rootFD, $0, O_PATH_ | O_DIRECTORY | O_CLOEXEC, 0) }
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR || errno == ELOOP { return nil }
            throw JournalError(.io, "open parent of a journal path: errno \(errno)")
        }
        defer { _ = Glibc.close(fd) }
        return try body(fd, name)
    }

    func check(_ r: Int32, _ what: String, allowing: [Int32] = []) throws {
        guard r != 0 else { return }
        let e = errno
        if allowing.contains(e) { return }
        throw JournalError(e == ENOSPC || e == EDQUOT ? .noSpace : .io, "\(what): errno \(e)")
    }

    /// Whether the object `name` in `dirFD` is the file `id` of a record: its tag says so, or
    /// it has no tag (a file from before the journal; it takes the id). A missing object, or
    /// one tagged with another id (a later file under the same name), is not.
    func isFile(_ id: UInt64, _ dirFD: Int32, _ name: [UInt8]) -> Bool {
        if name == [46] { return true }  // the export root
        var tag: UInt64 = 0
        let r = cString(name) { cnfs_get_file_id(dirFD, $0, &tag) }
        if r == 0 { return id == 0 || tag == id }
        // No tag, or a file system that keeps no user.* attributes (tmpfs before Linux 6.6):
        // nothing to check against.
        guard errno == ENODATA || errno == EOPNOTSUPP else { return false }
        if id != 0 { _ = cString(name) { cnfs_set_file_id(dirFD, $0, id) } }
        return true
    }

    package func apply(_ change: FileChange) throws {
        switch change {
        case .write(let id, let path, let offset, let data):
            try inParent(path) { dirFD, name in
                guard isFile(id, dirFD, name) else { return }
                let fd = cString(name) { openat(dirFD, $0, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) }
                guard fd >= 0 else {
                    if errno == ENOENT || errno == ELOOP || errno == EISDIR { return }
                    throw JournalError(.io, "open for replay: errno \(errno)")
                }
                defer { _ = Glibc.close(fd) }
                try data.withUnsafeBytes { try JournalDirectory.pwriteAll(fd, $0, at: offset) }
            }
        case .setAttributes(let id, let path, let v):
            try inParent(path) { dirFD, name in
                guard isFile(id, dirFD, name) else { return }
                try setAttributes(dirFD, name, v)
            }
        case .create(let id, let path, let type, let mode, let uid, let gid, let rdev, let target):
            if id != 0, presentIDs?.contains(id) == true { return }
            try inParent(path) { dirFD, name in
                var st = stat()
                if cString(name, { fstatat(dirFD, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 {
                    // Made, but not tagged yet when a crash stopped the create: finish it.
                    var tag: UInt64 = 0
                    if id != 0, cString(name, { cnfs_get_file_id(dirFD, $0, &tag) }) != 0, errno == ENODATA {
                        try cString(name) { p in
                            try check(fchownat(dirFD, p, uid, gid, AT_SYMLINK_NOFOLLOW), "replay chown")
                            if type != .symlink { try check(fchmodat(dirFD, p, mode_t(mode & 0o7777), 0), "replay chmod") }
                            _ = cnfs_set_file_id(dirFD, p, id)
                        }
                    }
                    return
                }
                try cString(name) { p in
                    switch type {
                    case .regular:
                        let fd = openat(dirFD, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode & 0o7777))
                        guard fd >= 0 else { throw JournalError(errno == ENOSPC ? .noSpace : .io, "replay create: errno \(errno)") }
                        _ = Glibc.close(fd)
                    case .directory:
                        try check(mkdirat(dirFD, p, mode_t(mode & 0o7777)), "replay mkdir")
                    case .symlink:
                        try cString(target) { t in try check(symlinkat(t, dirFD, p), "replay symlink") }
                    case .fifo:
                        try check(mknodat(dirFD, p, S_IFIFO | mode_t(mode & 0o7777), 0), "replay mkfifo")
                    case .socket:
                        try check(mknodat(dirFD, p, S_IFSOCK | mode_t(mode & 0o7777), 0), "replay mknod")
                    case .characterDevice:
                        try check(mknodat(dirFD, p, S_IFCHR | mode_t(mode & 0o7777), dev_t(rdev)), "replay mknod")
                    case .blockDevice:
                        try check(mknodat(dirFD, p, S_IFBLK | mode_t(mode & 0o7777), dev_t(rdev)), "replay mknod")
                    }
                    try check(fchownat(dirFD, p, uid, gid, AT_SYMLINK_NOFOLLOW), "replay chown")
                    if type != .symlink { try check(fchmodat(dirFD, p, mode_t(mode & 0o7777), 0), "replay chmod") }
                    // A tag is a help, not a must (none on symlinks and special files, none on a
                    // file system without user.* attributes): identities also live in the index,
                    // and a copy keeps the untagged ones by inode number.
                    if id != 0, cnfs_set_file_id(dirFD, p, id) != 0, let untagged {
                        var st = stat()
                        if fstatat(dirFD, p, &st, AT_SYMLINK_NOFOLLOW) == 0 { try untagged.note(inode: UInt64(st.st_ino), id: id) }
                    }
                }
            }
        case .remove(let id, let path, let isDirectory):
            try inParent(path) { dirFD, name in
                guard isFile(id, dirFD, name) else { return }
                try cString(name) { p in
                    try check(unlinkat(dirFD, p, isDirectory ? AT_REMOVEDIR : 0), "replay remove", allowing: [ENOENT, ENOTEMPTY])
                }
            }
        case .rename(let id, let from, let to):
            guard let (toDir, toName) = Self.split(to) else { throw JournalError(.damaged, "journal path is not a plain relative path") }
            try inParent(from) { fromFD, fromName in
                guard isFile(id, fromFD, fromName) else { return }
                let toFD: Int32 = toDir.isEmpty ? dup(rootFD)
                    : cString(toDir) { cnfs_open_beneath(rootFD, $0, O_PATH_ | O_DIRECTORY | O_CLOEXEC, 0) }
                guard toFD >= 0 else { return }
                defer { _ = Glibc.close(toFD) }
                try cString(fromName) { f in
                    try cString(toName) { t in
                        // Two names of one file (a tree that is ahead: the link that made `from`
                        // replayed after the rename had been applied): rename(2) leaves both,
                        // while the change ends with `to` alone.
                        var a = stat(), b = stat()
                        if fstatat(fromFD, f, &a, AT_SYMLINK_NOFOLLOW) == 0, fstatat(toFD, t, &b, AT_SYMLINK_NOFOLLOW) == 0,
                           a.st_ino == b.st_ino, a.st_dev == b.st_dev, a.st_mode & S_IFMT != S_IFDIR {
                            try check(unlinkat(fromFD, f, 0), "replay rename", allowing: [ENOENT])
                            return
                        }
                        try check(renameat(fromFD, f, toFD, t), "replay rename", allowing: [ENOENT])
                    }
                }
            }
        case .link(let id, let existing, let new):
            guard let (newDir, newName) = Self.split(new) else { throw JournalError(.damaged, "journal path is not a plain relative path") }
            try inParent(existing) { fromFD, fromName in
                guard isFile(id, fromFD, fromName) else { return }
                let toFD: Int32 = newDir.isEmpty ? dup(rootFD)
                    : cString(newDir) { cnfs_open_beneath(rootFD, $0, O_PATH_ | O_DIRECTORY | O_CLOEXEC, 0) }
                guard toFD >= 0 else { return }
                defer { _ = Glibc.close(toFD) }
                try cString(fromName) { f in
                    try cString(newName) { t in try check(linkat(fromFD, f, toFD, t, 0), "replay link", allowing: [ENOENT, EEXIST]) }
                }
            }
        case .checkpoint, .reply:
            break
        }
    }

    func setAttributes(_ dirFD: Int32, _ name: [UInt8], _ v: AttributeValues) throws {
        try cString(name) { p in
            var st = stat()
            guard fstatat(dirFD, p, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return }
            let isLink = st.st_mode & S_IFMT == S_IFLNK
            if let size = v.size, st.st_mode & S_IFMT == S_IFREG {
                let fd = openat(dirFD, p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { throw JournalError(.io, "replay truncate: errno \(errno)") }
                defer { _ = Glibc.close(fd) }
                try check(ftruncate(fd, off_t(size)), "replay truncate")
            }
            if v.uid != nil || v.gid != nil {
                try check(fchownat(dirFD, p, v.uid ?? UInt32.max, v.gid ?? UInt32.max, AT_SYMLINK_NOFOLLOW), "replay chown")
            }
            if let mode = v.mode, !isLink { try check(fchmodat(dirFD, p, mode_t(mode & 0o7777), 0), "replay chmod") }
            if v.atime != nil || v.mtime != nil {
                func spec(_ t: FileTime?) -> timespec { t?.timespec ?? timespec(tv_sec: 0, tv_nsec: CNFS_UTIME_OMIT) }
                let times = [spec(v.atime), spec(v.mtime)]
                try check(utimensat(dirFD, p, times, AT_SYMLINK_NOFOLLOW), "replay utimes")
            }
        }
    }
}

let O_PATH_ = CNFS_O_PATH
