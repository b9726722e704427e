import CNFSShims
import Glibc

/// How CREATE treats an existing name (RFC 1813 §3.3.8 createmode3 without the wire).
public enum CreateMode: Hashable, Sendable {
    /// Succeed on an existing file.
    case unchecked
    /// Fail with `exists` on an existing name.
    case guarded
    /// Exclusive with a verifier: the verifier is kept in the file's atime and mtime seconds
    /// (as knfsd does) so a retransmitted create finds its own file and succeeds.
    case exclusive(UInt64)
}

public enum SpecialFileType: Hashable, Sendable {
    case characterDevice(major: UInt32, minor: UInt32)
    case blockDevice(major: UInt32, minor: UInt32)
    case socket
    case fifo
}

/// One entry of a directory listing. `cookie` is the file system's own offset after this entry
/// (d_off), so it stays valid while the directory changes.
public struct DirectoryEntry: Hashable, Sendable {
    public var name: [UInt8]
    public var cookie: UInt64
    public var fileID: UInt64
}

extension FileStore {
    func statChild(_ dirFD: Int32, _ name: [UInt8]) -> stat? {
        var st = stat()
        let r = Self.cString(name) { fstatat(dirFD, $0, &st, AT_SYMLINK_NOFOLLOW) }
        return r == 0 ? st : nil
    }

    func checkNewName(_ name: [UInt8]) throws {
        if Self.isDot(name) || Self.isDotDot(name) { throw StoreError(.exists, operation: "create") }
        try Self.validate(name: name)
    }

    public func create(_ dirID: UInt64, name: [UInt8], mode: UInt32, how: CreateMode) throws -> FileAttributes {
        try checkNewName(name)
        let existed = (try? lookup(dirID, name: name)) != nil
        return try recording({ try createFile(dirID, name: name, mode: mode, how: how) }) { a in
            guard !existed else { return [] }
            var changes: [FileChange] = [created(dirID, name, a)]
            if case .exclusive = how {
                changes.append(.setAttributes(fileID: a.fileID, path: path(dirID, name), AttributeValues(atime: a.atime, mtime: a.mtime)))
            }
            return changes
        }
    }

    /// The record of a new object. The object is also tagged with its file id (an xattr), so
    /// the durable copy and a tree rebuilt from it carry their identities.
    func created(_ dirID: UInt64, _ name: [UInt8], _ a: FileAttributes, target: [UInt8] = []) -> FileChange {
        _ = try? withDirectory(dirID) { fd in Self.cString(name) { cnfs_set_file_id(fd, $0, a.fileID) } }
        return .create(fileID: a.fileID, path: path(dirID, name), type: a.type, mode: a.mode, uid: a.uid, gid: a.gid,
                rdev: cnfs_makedev(a.rdevMajor, a.rdevMinor), target: target)
    }

    func createFile(_ dirID: UInt64, name: [UInt8], mode: UInt32, how: CreateMode) throws -> FileAttributes {
        try withDirectory(dirID) { dirFD in
            let flags = O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC
            // O_EXCL first, also for UNCHECKED, to know whether this call made the file.
            let fd: Int32
            var created = true
            if isJournaled, statChild(dirFD, name) == nil { notePending(PendingChange(kind: .create, path: path(dirID, name))) }
            do {
                fd = try Self.cString(name) { p in try sys("create") { openat(dirFD, p, flags | O_EXCL, mode_t(mode & 0o7777)) } }
            } catch let e as StoreError where e.code == .exists {
                if case .exclusive(let verifier) = how, let st = statChild(dirFD, name),
                   st.st_mode & S_IFMT == S_IFREG, Self.matches(st, verifier: verifier) {
                    return try childAttributes(dirFD: dirFD, dirID: dirID, name: name)
                }
                guard case .unchecked = how else { throw e }
                created = false
                fd = try Self.cString(name) { p in try sys("create") { openat(dirFD, p, flags, mode_t(mode & 0o7777)) } }
            }
            defer { close(fd) }
            if case .exclusive(let verifier) = how {
                let times = [timespec(tv_sec: Int(verifier >> 32), tv_nsec: 0),
                             timespec(tv_sec: Int(verifier & 0xffff_ffff), tv_nsec: 0)]
                _ = try sys("futimens") { futimens(fd, times) }
            }
            var st = stat()
            _ = try sys("fstat") { fstat(fd, &st) }
            return try attributes(st, id: identify(UInt64(st.st_ino), dirID, name, created: created))
        }
    }

    static func matches(_ st: stat, verifier: UInt64) -> Bool {
        UInt64(UInt32(truncatingIfNeeded: st.st_atim.tv_sec)) == verifier >> 32
            && UInt64(UInt32(truncatingIfNeeded: st.st_mtim.tv_sec)) == verifier & 0xffff_ffff
    }

    public func makeDirectory(_ dirID: UInt64, name: [UInt8], mode: UInt32) throws -> FileAttributes {
        try checkNewName(name)
        return try recording({
            try withDirectory(dirID) { dirFD in
                notePending(PendingChange(kind: .create, path: path(dirID, name)))
                _ = try Self.cString(name) { p in try sys("mkdir") { mkdirat(dirFD, p, mode_t(mode & 0o7777)) } }
                return try childAttributes(dirFD: dirFD, dirID: dirID, name: name, created: true)
            }
        }) { a in [created(dirID, name, a)] }
    }

    public func makeSymlink(_ dirID: UInt64, name: [UInt8], target: [UInt8]) throws -> FileAttributes {
        try checkNewName(name)
        guard !target.contains(0) else { throw StoreError(.invalid, operation: "symlink") }
        return try recording({
            try withDirectory(dirID) { dirFD in
                notePending(PendingChange(kind: .create, path: path(dirID, name)))
                _ = try Self.cString(target) { t in
                    try Self.cString(name) { p in try sys("symlink") { symlinkat(t, dirFD, p) } }
                }
                return try childAttributes(dirFD: dirFD, dirID: dirID, name: name, created: true)
            }
        }) { a in [created(dirID, name, a, target: target)] }
    }

    public func makeNode(_ dirID: UInt64, name: [UInt8], type: SpecialFileType, mode: UInt32) throws -> FileAttributes {
        try checkNewName(name)
        let (kind, dev): (mode_t, dev_t) = switch type {
        case .characterDevice(let ma, let mi): (S_IFCHR, dev_t(cnfs_makedev(ma, mi)))
        case .blockDevice(let ma, let mi): (S_IFBLK, dev_t(cnfs_makedev(ma, mi)))
        case .socket: (S_IFSOCK, 0)
        case .fifo: (S_IFIFO, 0)
        }
        return try recording({
            try withDirectory(dirID) { dirFD in
                notePending(PendingChange(kind: .create, path: path(dirID, name)))
                _ = try Self.cString(name) { p in try sys("mknod") { mknodat(dirFD, p, kind | mode_t(mode & 0o7777), dev) } }
                return try childAttributes(dirFD: dirFD, dirID: dirID, name: name, created: true)
            }
        }) { a in [created(dirID, name, a)] }
    }

    /// Forgets a removed name's file when it was the last link; returns the file's id, if known.
    @discardableResult
    func forgetIfLast(_ st: stat) -> UInt64? {
        let isLast = st.st_mode & S_IFMT == S_IFDIR || st.st_nlink <= 1
        guard let id = index.knownID(inode: UInt64(st.st_ino)) else { return nil }
        cache.invalidate(id)
        if isLast {
            index.forget(id)
        } else {
            // Another name of the file remains: record it as the file's place now (the index
            // must name a place that exists, or a rebuild could not find the file again).
            try? relocate(id, inode: UInt64(st.st_ino))
        }
        return id
    }

    public func remove(_ dirID: UInt64, name: [UInt8]) throws {
        if Self.isDot(name) || Self.isDotDot(name) { throw StoreError(.invalid, operation: "remove") }
        try Self.validate(name: name)
        try recording({
            try withDirectory(dirID) { dirFD -> UInt64? in
                guard let st = statChild(dirFD, name) else { throw StoreError(errno: errno, operation: "remove") }
                if st.st_mode & S_IFMT == S_IFDIR { throw StoreError(.isDirectory, operation: "remove") }
                notePending(PendingChange(kind: .remove, fileID: index.knownID(inode: UInt64(st.st_ino)) ?? 0,
                                          inode: UInt64(st.st_ino), path: path(dirID, name)))
                _ = try Self.cString(name) { p in try sys("unlink") { unlinkat(dirFD, p, 0) } }
                return forgetIfLast(st)
            }
        }) { id in [.remove(fileID: id ?? 0, path: path(dirID, name), isDirectory: false)] }
    }

    public func removeDirectory(_ dirID: UInt64, name: [UInt8]) throws {
        if Self.isDot(name) { throw StoreError(.invalid, operation: "rmdir") }
        if Self.isDotDot(name) { throw StoreError(.notEmpty, operation: "rmdir") }
        try Self.validate(name: name)
        try recording({
            try withDirectory(dirID) { dirFD -> UInt64? in
                guard let st = statChild(dirFD, name) else { throw StoreError(errno: errno, operation: "rmdir") }
                notePending(PendingChange(kind: .removeDirectory, fileID: index.knownID(inode: UInt64(st.st_ino)) ?? 0,
                                          inode: UInt64(st.st_ino), path: path(dirID, name)))
                _ = try Self.cString(name) { p in try sys("rmdir") { unlinkat(dirFD, p, AT_REMOVEDIR) } }
                return forgetIfLast(st)
            }
        }) { id in [.remove(fileID: id ?? 0, path: path(dirID, name), isDirectory: true)] }
    }

    public func rename(_ fromDirID: UInt64, name fromName: [UInt8], to toDirID: UInt64, name toName: [UInt8]) throws {
        for n in [fromName, toName] where Self.isDot(n) || Self.isDotDot(n) {
            throw StoreError(.invalid, operation: "rename")
        }
        try Self.validate(name: fromName)
        try Self.validate(name: toName)
        // The paths before the change: what the record names.
        var paths: (from: [UInt8], to: [UInt8]) = ([], [])
        try recording({ () -> UInt64 in
            paths = (path(fromDirID, fromName), path(toDirID, toName))
            return try renameEntry(fromDirID, name: fromName, to: toDirID, name: toName, paths: paths)
        }) { id in [.rename(fileID: id, from: paths.from, to: paths.to)] }
    }

    func renameEntry(_ fromDirID: UInt64, name fromName: [UInt8], to toDirID: UInt64, name toName: [UInt8],
                     paths: (from: [UInt8], to: [UInt8])) throws -> UInt64 {
        try withDirectory(fromDirID) { fromFD in
            try withDirectory(toDirID) { toFD in
                guard let source = statChild(fromFD, fromName) else { throw StoreError(errno: errno, operation: "rename") }
                let target = statChild(toFD, toName)
                notePending(PendingChange(kind: .rename, fileID: index.knownID(inode: UInt64(source.st_ino)) ?? 0,
                                          inode: UInt64(source.st_ino), path: paths.from, to: paths.to))
                _ = try Self.cString(fromName) { f in
                    try Self.cString(toName) { t in try sys("rename") { renameat(fromFD, f, toFD, t) } }
                }
                if let target, target.st_ino != source.st_ino { forgetIfLast(target) }
                let id = index.id(inode: UInt64(source.st_ino), parent: toDirID, name: toName)
                index.place(id, parent: toDirID, name: toName, inode: UInt64(source.st_ino))
                cache.invalidate(id)
                return id
            }
        }
    }

    public func link(_ id: UInt64, to dirID: UInt64, name: [UInt8]) throws {
        try checkNewName(name)
        try recording({ try linkEntry(id, to: dirID, name: name) }) { _ in
            [.link(fileID: id, existing: path(of: id), new: path(dirID, name))]
        }
    }

    func linkEntry(_ id: UInt64, to dirID: UInt64, name: [UInt8]) throws {
        try withLocation(id) { fromFD, fromName, st in
            guard st.st_mode & S_IFMT != S_IFDIR else { throw StoreError(.isDirectory, operation: "link") }
            try withDirectory(dirID) { toFD in
                notePending(PendingChange(kind: .link, fileID: id, inode: UInt64(st.st_ino), path: path(of: id), to: path(dirID, name)))
                _ = try Self.cString(fromName) { f in
                    try Self.cString(name) { t in try sys("link") { linkat(fromFD, f, toFD, t, 0) } }
                }
            }
        }
    }

    /// Lists directory `dirID` from `cookie` (0 for the start). `body` gets each entry and, when
    /// `withAttributes`, its attributes; it returns false to stop before consuming the entry
    /// (it did not fit). Returns true when the end of the directory was reached.
    public func readDirectory(_ dirID: UInt64, cookie: UInt64, withAttributes: Bool,
                              _ body: (DirectoryEntry, FileAttributes?) throws -> Bool) throws -> Bool {
        let fd = try open(dirID, flags: O_RDONLY | O_DIRECTORY)
        guard let dir = fdopendir(fd) else {
            close(fd)
            throw StoreError(errno: errno, operation: "opendir")
        }
        defer { closedir(dir) }
        let dirFD = dirfd(dir)
        if cookie != 0 { seekdir(dir, Int(bitPattern: UInt(cookie))) }
        let parentID = dirID == Self.rootID ? Self.rootID : (index.node(dirID)?.parent ?? Self.rootID)
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw StoreError(errno: errno, operation: "readdir") }
                return true
            }
            let cname = cnfs_dirent_name(entry)!
            let name = Array(UnsafeBufferPointer(start: UnsafeRawPointer(cname).assumingMemoryBound(to: UInt8.self), count: strlen(cname)))
            let next = UInt64(UInt(bitPattern: Int(entry.pointee.d_off)))
            let id: UInt64
            var attrs: FileAttributes?
            if Self.isDot(name) {
                id = dirID
                if withAttributes { attrs = try attributes(of: dirID) }
            } else if Self.isDotDot(name) {
                id = parentID
                if withAttributes { attrs = try? attributes(of: parentID) }
            } else if withAttributes {
                // The entry's own NUL-terminated name: no C string to make for each entry.
                var st = stat()
                guard fstatat(dirFD, cname, &st, AT_SYMLINK_NOFOLLOW) == 0,
                      let found = discoveredID(dirFD: dirFD, dirID: dirID, name: name, inode: UInt64(st.st_ino)),
                      let a = try? attributes(st, id: found) else { continue }
                id = a.fileID
                attrs = a
            } else {
                guard let found = discoveredID(dirFD: dirFD, dirID: dirID, name: name, inode: UInt64(entry.pointee.d_ino)) else { continue }
                id = found
            }
            guard try body(DirectoryEntry(name: name, cookie: next, fileID: id), attrs) else { return false }
        }
    }
}
