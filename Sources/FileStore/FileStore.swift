import CNFSShims
import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The backing directory of one export. Every call takes server file ids (see `FileIndex`),
/// resolves them to a place in the tree without following symlinks and without leaving the
/// export (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and makes the system call.
/// Calls block: run them on a thread pool. Errors are `StoreError`.
public final class FileStore: Sendable {
    public let root: String
    public let exportID: UInt64
    public static let rootID: UInt64 = FileIndex.rootID
    let rootFD: Int32
    /// Owns `rootFD`: the parent of the export's top-level entries in the handle cache.
    let rootDirectory: FileDescriptor
    let rootDevice: UInt64
    let index: FileIndex
    let cache: HandleCache
    let logger: Logger
    let handleKey: SipHash24
    /// Where changes are recorded (the write-back journal), if anywhere.
    let recorder: (any ChangeRecorder)?
    /// Held around every change to the namespace (and, with a journal, its record): the
    /// journal's order is then the order in which changes took effect, and an unlink and the
    /// forgetting of its file id are one step, so a file created meanwhile that gets the same
    /// inode number can never inherit the removed file's id.
    let changeLock = NIOLock()
    /// With a journal: the namespace change in progress (see `PendingChange`).
    let pending: PendingNote?
    /// With a journal: UNSTABLE data not yet copied into it (see `WriteBackSettings`).
    let writeBackTable: WriteBackTable?
    /// Without a journal: the objects changes touched, fsynced for callers on `sync` exports.
    let metadataCommits: MetadataCommits?
    /// Changes to the served tree through this store that have begun, and that have ended
    /// (see `TreeStamp`).
    let changesBegun = Atomic<UInt64>(0)
    let changesEnded = Atomic<UInt64>(0)
    /// Unique to this store among all opened in the process (a store opened again on the same
    /// tree, as a takeover does, is another): what is kept of one never passes for another's.
    public let instance = FileStore.instances.wrappingAdd(1, ordering: .relaxed).newValue
    private static let instances = Atomic<UInt64>(0)

    /// Opens the export at `root`, keeping its identity index under `stateDirectory`. Handles
    /// are signed with `handleKey`. The process should run with umask 0 (the server sets it):
    /// clients send the mode they want with their own umask already applied.
    public init(root: String, stateDirectory: String, exportID: UInt64, handleKey: SipHash24,
                recorder: (any ChangeRecorder)? = nil, writeBack: WriteBackSettings = WriteBackSettings(),
                cacheLimits: HandleCacheLimits = HandleCacheLimits(), logger: Logger) throws {
        self.root = root
        self.cache = HandleCache(limits: cacheLimits)
        self.handleKey = handleKey
        self.recorder = recorder
        self.writeBackTable = recorder != nil && writeBack.isEnabled ? WriteBackTable(settings: writeBack) : nil
        self.metadataCommits = recorder == nil ? MetadataCommits() : nil
        self.exportID = exportID
        self.logger = logger
        let fd = Glibc.open(root, CNFS_O_PATH | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(errno: errno, operation: "open export \(root)") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw StoreError(errno: errno, operation: "stat export \(root)") }
        self.rootFD = fd
        self.rootDirectory = FileDescriptor(fd: fd, writable: false)
        self.rootDevice = UInt64(st.st_dev)
        try Self.makeDirectories(stateDirectory)
        let hex = String(exportID, radix: 16)
        self.index = try FileIndex(logPath: "\(stateDirectory)/index-\(hex).log", rootInode: UInt64(st.st_ino))
        self.pending = recorder == nil ? nil : try PendingNote(path: "\(stateDirectory)/pending-\(hex)")
    }

    static func makeDirectories(_ path: String) throws {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o700) != 0 && errno != EEXIST {
                throw StoreError(errno: errno, operation: "mkdir \(built)")
            }
        }
    }

    // MARK: Handles

    public func handle(for id: UInt64) -> [UInt8] {
        FileHandleFormat(exportID: exportID, fileID: id).bytes(key: handleKey)
    }

    /// The file id a handle names. A handle that is not ours (malformed, or failing the
    /// signature check) is `badHandle`; one of another export, or of a file this export does
    /// not know, is `stale`.
    public func fileID(fromHandle bytes: [UInt8]) throws -> UInt64 {
        guard let h = FileHandleFormat(bytes: bytes, key: handleKey) else { throw StoreError(.badHandle, operation: "handle") }
        guard h.exportID == exportID, index.node(h.fileID) != nil else {
            throw StoreError(.stale, operation: "handle")
        }
        return h.fileID
    }

    /// Makes the identity index durable.
    public func syncIndex() { index.sync() }

    /// Makes the served tree durable (syncfs of its file system), and the identity index: before
    /// a checkpoint lets the journal forget changes, the tree must hold them after an OS crash.
    public func syncTree() throws {
        let fd = try sys("open export \(root)") { Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        _ = try sys("syncfs \(root)") { cnfs_syncfs(fd) }
        index.sync()
    }

    /// What the handle cache has done since the store was opened (for `swiftnfsd stats`).
    public var cacheStatistics: HandleCacheStatistics { cache.statistics }

    // MARK: Resolution

    static func cString<T>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try terminated(name + [0], body)
    }

    /// `bytes`, which end in a NUL, as a C string.
    static func terminated<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try bytes.withUnsafeBufferPointer { try $0.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) } }
    }

    static func validate(name: [UInt8]) throws {
        guard !name.isEmpty, !name.contains(0), !name.contains(UInt8(ascii: "/")) else {
            throw StoreError(.accessDenied, operation: "invalid name")
        }
        guard name.count <= 255 else { throw StoreError(.nameTooLong, operation: "name") }
    }

    static func isDot(_ name: [UInt8]) -> Bool { name == [46] }
    static func isDotDot(_ name: [UInt8]) -> Bool { name == [46, 46] }

    /// Opens a path of components relative to the export root, never following a symlink.
    func openBeneath(_ components: [[UInt8]], flags: Int32) throws -> Int32 {
        if components.isEmpty { return try sys("open root") { openat(rootFD, ".", flags | O_CLOEXEC) } }
        var path: [UInt8] = []
        for (i, c) in components.enumerated() {
            if i > 0 { path.append(UInt8(ascii: "/")) }
            path += c
        }
        return try Self.cString(path) { p in
            try sys("open beneath") { cnfs_open_beneath(rootFD, p, flags | O_CLOEXEC, 0) }
        }
    }

    /// Finds a file whose recorded place is out of date (renamed or moved by someone other than
    /// this server) by walking the export for its inode number.
    func relocate(_ id: UInt64, inode: UInt64) throws {
        // The server's own bookkeeping: search with root's eyes, whoever is calling.
        try CallerIdentity.asRoot { try relocateAsRoot(id, inode: inode) }
    }

    private func relocateAsRoot(_ id: UInt64, inode: UInt64) throws {
        logger.info("file not where the index says; searching the export", metadata: ["store.fileid": "\(id)"])
        struct Found: Error {}
        var visited = 0
        do {
            try walkTree(rootFD, Self.rootID) { entry, dirID in
                visited += 1
                if visited > 10_000_000 { throw StoreError(.stale, operation: "relocate") }
                // The inode, and not another file's tag: an inode number freed by a removal
                // the index missed may name a newer file now.
                if entry.inode == inode, entry.fileIDTag.map({ $0 == id }) ?? true {
                    index.place(id, parent: dirID, name: entry.name, inode: inode)
                    cache.invalidate(id)
                    throw Found()
                }
                return entry.isDirectory ? index.id(inode: entry.inode, parent: dirID, name: entry.name) : nil
            }
        } catch is Found {
            return
        }
        throw StoreError(.stale, operation: "relocate")
    }

    func attributes(_ st: stat, id: UInt64) throws -> FileAttributes {
        guard let a = FileAttributes(st, fileID: id) else { throw StoreError(.badType, operation: "stat") }
        return a
    }

    // MARK: Attributes

    public func attributes(of id: UInt64) throws -> FileAttributes {
        try withLocation(id) { _, _, st in try attributes(st, id: id) }
    }

    /// The attributes of a child without resolving it first. `created`: the call itself just
    /// made the object, which then gets a new id (`FileIndex.newID`).
    func childAttributes(dirFD: Int32, dirID: UInt64, name: [UInt8], created: Bool = false) throws -> FileAttributes {
        var st = stat()
        _ = try Self.cString(name) { p in try sys("stat") { fstatat(dirFD, p, &st, AT_SYMLINK_NOFOLLOW) } }
        return try attributes(st, id: identify(UInt64(st.st_ino), dirID, name, created: created))
    }

    /// The id of the object with `inode` at (`dirID`, `name`): a new one when the caller just
    /// created it, else the one the index has (or gives) for the inode.
    func identify(_ inode: UInt64, _ dirID: UInt64, _ name: [UInt8], created: Bool) -> UInt64 {
        created ? index.newID(inode: inode, parent: dirID, name: name) : index.id(inode: inode, parent: dirID, name: name)
    }

    public func lookup(_ dirID: UInt64, name: [UInt8]) throws -> FileAttributes {
        if Self.isDot(name) { return try attributes(of: dirID) }
        if Self.isDotDot(name) {
            guard dirID != Self.rootID else { return try attributes(of: Self.rootID) }
            guard let parent = index.node(dirID)?.parent else { throw StoreError(.stale, operation: "lookup") }
            let dir = try attributes(of: dirID)
            guard dir.type == .directory else { throw StoreError(.notDirectory, operation: "lookup") }
            return try attributes(of: parent)
        }
        try Self.validate(name: name)
        return try withDirectory(dirID) { dirFD in
            var st = stat()
            _ = try Self.cString(name) { p in try sys("stat") { fstatat(dirFD, p, &st, AT_SYMLINK_NOFOLLOW) } }
            guard let id = discoveredID(dirFD: dirFD, dirID: dirID, name: name, inode: UInt64(st.st_ino)) else {
                throw StoreError(.notFound, operation: "lookup")
            }
            return try attributes(st, id: id)
        }
    }

    /// The id of an object that LOOKUP or a directory listing found, outside any change of the
    /// namespace. One the index has at this place needs no lock. Otherwise the id is given
    /// under the change lock, once the name is seen to still name that inode: a REMOVE that ran
    /// between the stat and now must not leave an id on a dead inode number, which a file
    /// created later with the same number would inherit (and with it the old file's handles).
    /// Nil: the name is gone or names another object now.
    func discoveredID(dirFD: Int32, dirID: UInt64, name: [UInt8], inode: UInt64) -> UInt64? {
        if let id = index.id(ifPlaced: inode, parent: dirID, name: name) { return id }
        return changeLock.withLock {
            guard let st = statChild(dirFD, name), UInt64(st.st_ino) == inode else { return nil }
            return index.id(inode: inode, parent: dirID, name: name)
        }
    }

    public func setAttributes(_ id: UInt64, _ changes: AttributeChanges) throws {
        try recording({ try applyAttributes(id, changes) }) { _ in
            // Record the values that took effect (a time "now" becomes the time it was).
            let after = try? attributes(of: id)
            let values = AttributeValues(
                mode: changes.mode.map { $0 & 0o7777 }, uid: changes.uid, gid: changes.gid, size: changes.size,
                atime: changes.atime == .unchanged ? nil : after?.atime, mtime: changes.mtime == .unchanged ? nil : after?.mtime)
            return [.setAttributes(fileID: id, path: path(of: id), values)]
        }
    }

    func applyAttributes(_ id: UInt64, _ changes: AttributeChanges) throws {
        try withLocation(id) { dirFD, name, st in
            let type = FileType(mode: st.st_mode)
            try Self.cString(name) { p in
                if let size = changes.size {
                    guard type == .regular else {
                        throw StoreError(type == .directory ? .isDirectory : .invalid, operation: "truncate")
                    }
                    guard size <= Self.maxOffset else { throw StoreError(.fileTooBig, operation: "truncate") }
                    let fd = try sys("open for truncate") { openat(dirFD, p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC) }
                    defer { close(fd) }
                    _ = try sys("truncate") { ftruncate(fd, off_t(size)) }
                }
                if changes.uid != nil || changes.gid != nil {
                    let uid = changes.uid.map { uid_t($0) } ?? uid_t.max
                    let gid = changes.gid.map { gid_t($0) } ?? gid_t.max
                    _ = try sys("chown") { fchownat(dirFD, p, uid, gid, AT_SYMLINK_NOFOLLOW) }
                }
                // chmod after chown: chown clears the set-id bits.
                if let mode = changes.mode, type != .symlink {
                    _ = try sys("chmod") { fchmodat(dirFD, p, mode_t(mode & 0o7777), 0) }
                }
                if changes.atime != .unchanged || changes.mtime != .unchanged {
                    func spec(_ c: AttributeChanges.TimeChange) -> timespec {
                        switch c {
                        case .unchanged: return timespec(tv_sec: 0, tv_nsec: CNFS_UTIME_OMIT)
                        case .now: return timespec(tv_sec: 0, tv_nsec: CNFS_UTIME_NOW)
                        case .set(let t): return t.timespec
                        }
                    }
                    let times = [spec(changes.atime), spec(changes.mtime)]
                    _ = try sys("utimes") { utimensat(dirFD, p, times, AT_SYMLINK_NOFOLLOW) }
                }
            }
        }
    }

    public func readLink(_ id: UInt64) throws -> [UInt8] {
        try withLocation(id) { dirFD, name, st in
            guard FileType(mode: st.st_mode) == .symlink else { throw StoreError(.invalid, operation: "readlink") }
            var buffer = [UInt8](repeating: 0, count: 4097)
            let n = try Self.cString(name) { p in
                try sys("readlink") { buffer.withUnsafeMutableBytes { readlinkat(dirFD, p, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4096) } }
            }
            return Array(buffer[0..<n])
        }
    }

    public func statistics() throws -> FileSystemStatistics {
        var s = statvfs()
        _ = try sys("statvfs") { fstatvfs(rootFD, &s) }
        let f = UInt64(s.f_frsize)
        return FileSystemStatistics(totalBytes: UInt64(s.f_blocks) * f, freeBytes: UInt64(s.f_bfree) * f,
                                    availableBytes: UInt64(s.f_bavail) * f, totalFiles: UInt64(s.f_files),
                                    freeFiles: UInt64(s.f_ffree), availableFiles: UInt64(s.f_favail),
                                    maxNameLength: UInt32(s.f_namemax))
    }
}

// MARK: Recording changes

extension FileStore {
    /// Whether changes go to a journal.
    public var isJournaled: Bool { recorder != nil }

    /// Runs a change and, with a journal, records what `describe` says it did, both under the
    /// change lock. `describe` runs after the change, with the identity index brought up to date.
    /// A namespace change notes itself (`notePending`) before its system call; the note is
    /// cleared once the record is appended, or the change failed.
    @discardableResult
    func recording<T>(_ body: () throws -> T, _ describe: (T) throws -> [FileChange]) throws -> T {
        try changing { try recordingChange(body, describe) }
    }

    private func recordingChange<T>(_ body: () throws -> T, _ describe: (T) throws -> [FileChange]) throws -> T {
        guard let recorder else { return try changeLock.withLock(body) }
        try recorder.waitForRoom(bytes: Self.namespaceRecordRoom)
        defer { recorder.releaseRoom(bytes: Self.namespaceRecordRoom) }
        return try changeLock.withLock {
            defer { pending?.clear() }
            let value = try body()
            Failpoint.dieBeforeRecordIfActive()
            for change in try describe(value) { _ = recorder.record(change, exportID: exportID) }
            return value
        }
    }

    /// The journal room a change other than a WRITE is admitted with: its records (paths,
    /// attributes) are far smaller.
    static let namespaceRecordRoom = 4096

    /// What a change that touched `objects` waits for before its reply on a `sync` export
    /// (nil: nothing). With a journal, the last change recorded (the journal is ordered, so its
    /// records are then stable). Without one, a point after which `objects` (the directories
    /// whose entries changed, the object made or changed) and the identity index are fsynced.
    public func durablePoint(committing objects: [UInt64]) -> UInt64? {
        if let recorder { return recorder.lastRecorded }
        guard let metadataCommits, !objects.isEmpty else { return nil }
        return metadataCommits.note(objects)
    }

    /// Returns once everything up to `point` (from `durablePoint`) is on stable storage.
    public func makeDurable(through point: UInt64) throws {
        if let recorder { return try recorder.makeDurable(through: point) }
        try metadataCommits?.makeDurable(through: point, round: commitMetadata)
    }

    /// Calls `done` (from any thread) with nil once everything up to `point` (from
    /// `durablePoint`) is on stable storage, or with the error when it could not be made so; the
    /// caller's thread does not wait for it (see `JournalWriter.whenDurable`).
    public func whenDurable(through point: UInt64, _ done: @escaping @Sendable (Error?) -> Void) {
        if let recorder { return recorder.whenDurable(through: point, done) }
        guard let metadataCommits else { return done(nil) }
        metadataCommits.whenDurable(through: point, round: commitMetadata, done)
    }

    /// One round of `MetadataCommits`: fsyncs each directory and regular file of `ids` (as
    /// root: a caller may change a directory it cannot read), then the identity index, so
    /// that the handles clients got for new objects still resolve after a crash. Other types
    /// (symlinks, devices) are in their directory's fsync; objects gone since are skipped.
    func commitMetadata(_ ids: [UInt64]) throws {
        try CallerIdentity.asRoot {
            for id in ids {
                do {
                    try withLocation(id) { dirFD, name, st in
                        let type = st.st_mode & S_IFMT
                        guard type == S_IFDIR || type == S_IFREG else { return }
                        let fd = try Self.cString(name) { p in
                            try sys("open for fsync") { openat(dirFD, p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }
                        }
                        defer { close(fd) }
                        _ = try sys("fsync") { fsync(fd) }
                    }
                } catch let e as StoreError where [.stale, .notFound].contains(e.code) {
                    continue
                }
            }
        }
        index.sync()
    }

    /// The path of `id` relative to the export root, as the journal names it.
    func path(of id: UInt64) -> [UInt8] {
        Self.join(index.components(of: id) ?? [])
    }

    func path(_ dirID: UInt64, _ name: [UInt8]) -> [UInt8] {
        Self.join((index.components(of: dirID) ?? []) + [name])
    }

    static func join(_ components: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, c) in components.enumerated() {
            if i > 0 { out.append(UInt8(ascii: "/")) }
            out += c
        }
        return out
    }
}

// MARK: Identity after a rebuild or a replay

extension FileStore {
    /// After the served tree was rebuilt (and the journal replayed onto it), learns every
    /// file's identity from its tag: walks the tree and records each tagged object's id at the
    /// place and inode it has now. An untagged object takes the id `untaggedID` gives for its
    /// path (the durable copy's record of it), else the one the index has for its place.
    public func adoptTaggedIdentities(untaggedID: ([UInt8]) -> UInt64? = { _ in nil }) {
        let byPlace = index.idsByPlace()
        index.forgetAllInodes()
        cache.invalidateAll()
        var st = stat()
        if fstat(rootFD, &st) == 0 { index.place(Self.rootID, parent: Self.rootID, name: [], inode: UInt64(st.st_ino)) }
        walkTree(rootFD, Self.rootID) { entry, dirID in
            let name = entry.name
            let id: UInt64
            if let tag = entry.fileIDTag, tag > Self.rootID {
                id = tag
                index.place(id, parent: dirID, name: name, inode: entry.inode)
            } else if let recorded = untaggedID(path(dirID, name)), recorded > Self.rootID {
                id = recorded
                index.place(id, parent: dirID, name: name, inode: entry.inode)
            } else if let known = byPlace[FileIndex.Place(parent: dirID, name: name)] {
                // Untagged (a symlink, a special file, a file system without user.* attributes):
                // the id the index has for this place.
                id = known
                index.place(id, parent: dirID, name: name, inode: entry.inode)
            } else {
                id = index.id(inode: entry.inode, parent: dirID, name: name)
            }
            return id
        }
    }

    /// No new file gets an id up to `through`: the highest id a durable directory's journal has
    /// carried (`Durability.highestFileID`), which includes ids an HA active assigned to files
    /// it removed since. Their handles must stay stale here too, never name a new file.
    public func reserveFileIDs(through: UInt64) {
        index.reserve(through: through)
    }

    /// After a rebuild and the replay: files the index knows that are not in the tree are gone.
    public func forgetMissingIdentities() {
        for id in index.allIDs where id != Self.rootID && index.node(id)?.inode == 0 {
            index.forget(id)
            cache.invalidate(id)
        }
    }

    /// Brings the identity index in line with a change replayed from the journal: a file the
    /// journal created or moved gets the id the journal gave it, so handles handed out before
    /// the crash resolve to it.
    /// Before a replayed remove: if the name is one of several links of a file, the inode to
    /// find the file by afterwards (under one of its other names).
    public func survivingLink(of change: FileChange) -> UInt64? {
        guard case .remove(_, let path, false) = change else { return nil }
        let comps = path.split(separator: UInt8(ascii: "/")).map(Array.init)
        guard let name = comps.last, let fd = try? openBeneath(Array(comps.dropLast()), flags: CNFS_O_PATH | O_DIRECTORY) else {
            return nil
        }
        defer { close(fd) }
        var st = stat()
        guard Self.cString(name, { fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0, st.st_nlink > 1 else { return nil }
        return UInt64(st.st_ino)
    }

    public func reconcile(_ change: FileChange, survivingInode: UInt64? = nil) {
        let fileID: UInt64, path: [UInt8]
        switch change {
        case .create(let id, let p, _, _, _, _, _, _): (fileID, path) = (id, p)
        case .rename(let id, _, let to): (fileID, path) = (id, to)
        case .link(let id, _, let new): (fileID, path) = (id, new)
        case .remove(let id, let removed, _):
            guard id != 0 else { return }
            if let inode = survivingInode {
                // The file lives on under another name: find it there.
                try? relocate(id, inode: inode)
            } else if self.path(of: id) == removed {
                // Its last name is gone; files left without a place after the replay are
                // forgotten (`forgetMissingIdentities`).
                index.markUnplaced(id)
                cache.invalidate(id)
            }
            return
        default: return
        }
        guard fileID != 0 else { return }
        var comps = path.split(separator: UInt8(ascii: "/")).map(Array.init)
        guard let name = comps.popLast() else { return }
        var dir = Self.rootID
        for c in comps {
            guard let a = try? lookup(dir, name: c), a.type == .directory else { return }
            dir = a.fileID
        }
        _ = try? withDirectory(dir) { fd in
            var st = stat()
            guard Self.cString(name, { fstatat(fd, $0, &st, AT_SYMLINK_NOFOLLOW) }) == 0 else { return }
            index.place(fileID, parent: dir, name: name, inode: UInt64(st.st_ino))
            cache.invalidate(fileID)
        }
    }
}

/// What the served tree looked like to this store at one moment, for what is kept from it
/// (a directory listing with attributes): as long as no change through this store has begun
/// since, the tree is as it was, except for what others do to the directory behind the
/// server's back. Every change a client makes (namespace, attributes, data) counts.
public struct TreeStamp: Hashable, Sendable {
    let store: UInt64
    let begun: UInt64
}

extension FileStore {
    /// The stamp of the tree now, or nil while a change through this store is under way.
    public func treeStamp() -> TreeStamp? {
        let begun = changesBegun.load(ordering: .sequentiallyConsistent)
        let ended = changesEnded.load(ordering: .sequentiallyConsistent)
        return begun == ended ? TreeStamp(store: instance, begun: begun) : nil
    }

    /// Whether no change through this store has begun since `stamp` was taken.
    public func isUnchanged(since stamp: TreeStamp) -> Bool {
        stamp.store == instance && changesBegun.load(ordering: .sequentiallyConsistent) == stamp.begun
    }

    /// Runs a change to the served tree, counted for `treeStamp`.
    func changing<T>(_ body: () throws -> T) rethrows -> T {
        changesBegun.add(1, ordering: .sequentiallyConsistent)
        defer { changesEnded.add(1, ordering: .sequentiallyConsistent) }
        return try body()
    }
}
