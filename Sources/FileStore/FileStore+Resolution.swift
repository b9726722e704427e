import CNFSShims
import Glibc

/// From a file id to a place in the tree: the handle cache first, the identity index and the
/// file system when the cache does not know the file or its place no longer holds.
///
/// Places are reached from directory descriptors by single names opened with O_NOFOLLOW, the
/// names the index learnt from the tree (never "." or ".."), starting at the export root: a
/// resolution never follows a symlink and never leaves the export by a name. A directory that
/// someone other than this server moves out of the export stays reachable through its cached
/// descriptor until evicted, as a file moved out stays reachable through its handle with knfsd
/// and `no_subtree_check`.
extension FileStore {
    /// Runs `body` with a descriptor of the directory holding `id`, the name of `id` in it, and
    /// the file's current stat. The root is (root, "."). A file that is not where the index
    /// says is searched for by inode before giving up with `stale`.
    func withLocation<T>(_ id: UInt64, _ body: (Int32, [UInt8], stat) throws -> T) throws -> T {
        if id == Self.rootID {
            var st = stat()
            _ = try sys("stat root") { fstat(rootFD, &st) }
            return try body(rootFD, [46], st)
        }
        if let location = cache.location(id) {
            errno = 0
            if let st = Self.currentStat(location) {
                return try withExtendedLifetime(location.parent) { try body(location.parent.fd, location.name, st) }
            }
            // The caller may not search the directory: refused (NFS3ERR_ACCES, as knfsd
            // answers), not a file that moved (searched for, then NFS3ERR_STALE).
            if errno == EACCES { throw StoreError(.accessDenied, operation: "resolve") }
            cache.discard(id)
        }
        let (location, st) = try resolve(id, depth: 0)
        return try withExtendedLifetime(location.parent) { try body(location.parent.fd, location.name, st) }
    }

    /// The stat of a cached place if it still names the same inode.
    static func currentStat(_ location: HandleCache.Location) -> stat? {
        var st = stat()
        let r = terminated(location.cName) { fstatat(location.parent.fd, $0, &st, AT_SYMLINK_NOFOLLOW) }
        return r == 0 && UInt64(st.st_ino) == location.inode ? st : nil
    }

    /// The slow way: where the index says `id` is, checked by inode, searched for when it is not
    /// there; the place found is cached.
    private func resolve(_ id: UInt64, depth: Int) throws -> (HandleCache.Location, stat) {
        for attempt in 0..<2 {
            let stamp = cache.stamp(id)
            guard let node = index.node(id), depth < 4096 else { throw StoreError(.stale, operation: "resolve") }
            let parent: FileDescriptor
            do {
                parent = try directoryDescriptor(node.parent, depth: depth + 1)
            } catch let e as StoreError where attempt == 0 && [.notFound, .notDirectory, .symlink, .stale].contains(e.code) {
                try relocate(id, inode: node.inode)
                continue
            }
            let location = HandleCache.Location(parent: parent, name: node.name, inode: node.inode)
            if let st = Self.currentStat(location) {
                cache.insert(id, location, stamp: stamp)
                return (location, st)
            }
            if attempt == 0 { try relocate(id, inode: node.inode) }
        }
        throw StoreError(.stale, operation: "resolve")
    }

    /// An O_PATH descriptor of directory `dirID` itself, from the cache or opened from its
    /// parent's (and kept with its entry).
    private func directoryDescriptor(_ dirID: UInt64, depth: Int) throws -> FileDescriptor {
        if dirID == Self.rootID { return rootDirectory }
        if let d = cache.directory(dirID) { return d }
        let (location, _) = try resolve(dirID, depth: depth)
        let fd = try withExtendedLifetime(location.parent) {
            try Self.cString(location.name) { p in
                try sys("open directory") { openat(location.parent.fd, p, CNFS_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            }
        }
        let d = cache.adopt(fd)
        // The name may have changed hands between the stat and the open.
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_ino) == location.inode else {
            throw StoreError(.stale, operation: "open directory")
        }
        cache.attachDirectory(dirID, d, inode: location.inode)
        return d
    }

    /// Runs `body` with an O_PATH descriptor of directory `dirID`, after checking that the
    /// directory is still where the index says (a directory removed meanwhile is `stale`).
    func withDirectory<T>(_ dirID: UInt64, _ body: (Int32) throws -> T) throws -> T {
        let type = try withLocation(dirID) { _, _, st in st.st_mode & S_IFMT }
        guard type == S_IFDIR else { throw StoreError(.notDirectory, operation: "directory") }
        let d = try directoryDescriptor(dirID, depth: 0)
        return try withExtendedLifetime(d) { try body(d.fd) }
    }

    /// Opens the object `id` itself (a directory for listing, a file for I/O).
    func open(_ id: UInt64, flags: Int32) throws -> Int32 {
        try withLocation(id) { dirFD, name, _ in
            try Self.cString(name) { p in try sys("open") { openat(dirFD, p, flags | O_NOFOLLOW | O_CLOEXEC) } }
        }
    }
}
