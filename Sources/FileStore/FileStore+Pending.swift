import CNFSShims
import Glibc

/// The namespace change in progress in a journaled export, noted before its system call.
///
/// A change reaches the served tree first and its journal record a moment later, both under
/// the store's change lock. A process that dies between the two leaves the tree ahead of the
/// journal, and every later record names paths as the tree has them: after a directory was
/// renamed in that moment, the WRITEs into it would be recorded under a path the durable copy
/// never gets, and lost with the instance store. So before the system call the store writes
/// what it is about to do to `STATE/pending-EXPORT` (one pwrite into the page cache, which a
/// process crash does not lose), and clears it once the record is appended. At the next start
/// `settlePendingChange` looks at the tree: a change that took effect gets its record then,
/// made from what the tree shows, before anything else is served.
struct PendingChange: Hashable {
    enum Kind: UInt8 {
        case create = 1, remove = 2, removeDirectory = 3, rename = 4, link = 5
    }

    var kind: Kind
    /// The object's id (0 for a create: it has none yet).
    var fileID: UInt64 = 0
    /// The object's inode number before the change (0 for a create).
    var inode: UInt64 = 0
    /// The path the change is about: the name created or removed, the source of a rename, the
    /// existing name of a link.
    var path: [UInt8]
    /// The target of a rename, the new name of a link.
    var to: [UInt8] = []

    // The note's format: kind (1 byte, 0 = none), file id and inode (8 bytes each, little
    // endian), the two paths each as a 2-byte length and its bytes.
    var encoded: [UInt8] {
        var out: [UInt8] = [kind.rawValue]
        for v in [fileID, inode] { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        for p in [path, to] {
            out += [UInt8(p.count & 0xff), UInt8(p.count >> 8)]
            out += p
        }
        return out
    }

    init(kind: Kind, fileID: UInt64 = 0, inode: UInt64 = 0, path: [UInt8], to: [UInt8] = []) {
        self.kind = kind
        self.fileID = fileID
        self.inode = inode
        self.path = path
        self.to = to
    }

    /// Decodes a note; nil for none, or for anything malformed.
    init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 21, let kind = Kind(rawValue: bytes[0]) else { return nil }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
        var at = 17
        var paths: [[UInt8]] = []
        for _ in 0..<2 {
            guard at + 2 <= bytes.count else { return nil }
            let n = Int(bytes[at]) | Int(bytes[at + 1]) << 8
            guard at + 2 + n <= bytes.count else { return nil }
            paths.append(Array(bytes[(at + 2)..<(at + 2 + n)]))
            at += 2 + n
        }
        self.init(kind: kind, fileID: u64(1), inode: u64(9), path: paths[0], to: paths[1])
    }

    /// Whether `change` is this change's record.
    func isRecorded(by change: FileChange) -> Bool {
        switch (kind, change) {
        case (.create, .create(_, let p, _, _, _, _, _, _)): p == path
        case (.remove, .remove(_, let p, false)), (.removeDirectory, .remove(_, let p, true)): p == path
        case (.rename, .rename(_, let from, let t)): from == path && t == to
        case (.link, .link(_, let existing, let new)): existing == path && new == to
        default: false
        }
    }
}

/// The file holding an export's `PendingChange`. Used under the store's change lock only.
final class PendingNote: @unchecked Sendable {
    let fd: Int32
    /// Whether a change is noted now (a clear with nothing noted writes nothing).
    private var noted = false

    init(path: String) throws {
        fd = try sys("open \(path)") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        noted = true  // whatever an earlier process left is cleared by `settle`
    }

    deinit { close(fd) }

    func note(_ change: PendingChange) {
        let bytes = change.encoded
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        noted = true
    }

    func clear() {
        guard noted else { return }
        var none: UInt8 = 0
        _ = pwrite(fd, &none, 1, 0)
        noted = false
    }

    /// What the file holds (written by an earlier process).
    func read() -> PendingChange? {
        var bytes = [UInt8](repeating: 0, count: 21 + 2 * 4096)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? PendingChange(decoding: Array(bytes[0..<n])) : nil
    }
}

extension FileStore {
    /// Notes a namespace change about to be made (with a journal; see `PendingChange`).
    func notePending(_ change: @autoclosure () -> PendingChange) {
        pending?.note(change())
    }

    /// At start, before serving: settles the change an earlier process noted as in progress
    /// when it died. Returns the records the journal lacks: the change's, if it took effect in
    /// the served tree and `lastRecorded` (the journal's last namespace record of this export)
    /// is not it already. The identity index is brought in line. `rebuilt`: the served tree
    /// was made from the durable copy and the journal, which agree; nothing to record.
    public func settlePendingChange(lastRecorded: FileChange?, rebuilt: Bool) -> [FileChange] {
        guard let pending else { return [] }
        defer { pending.clear() }
        guard !rebuilt, let change = pending.read() else { return [] }
        if let lastRecorded, change.isRecorded(by: lastRecorded) { return [] }
        let records = CallerIdentity.asRoot { effect(of: change) }
        if !records.isEmpty {
            logger.notice("the last change before a crash reached the tree but not the journal; recorded now",
                          metadata: ["store.change": "\(change.kind)"])
        }
        return records
    }

    /// The stat of the object at `path`, with the id of its directory and its name.
    func objectAt(_ path: [UInt8]) -> (dirID: UInt64, name: [UInt8], stat: stat?)? {
        var comps = path.split(separator: UInt8(ascii: "/")).map(Array.init)
        guard let name = comps.popLast() else { return nil }
        var dir = Self.rootID
        for c in comps {
            guard let a = try? lookup(dir, name: c), a.type == .directory else { return nil }
            dir = a.fileID
        }
        return try? withDirectory(dir) { fd in (dir, name, statChild(fd, name)) }
    }

    /// The records of `change` if it took effect in the tree, judged by what is at its paths
    /// now against the inode it was noted with.
    private func effect(of change: PendingChange) -> [FileChange] {
        switch change.kind {
        case .create:
            // The name was absent when the change was noted: whatever is there now it made.
            guard let (dirID, name, st) = objectAt(change.path), let st else { return [] }
            let id = (try? tag(dirID, name)) ?? index.id(inode: UInt64(st.st_ino), parent: dirID, name: name)
            index.place(id, parent: dirID, name: name, inode: UInt64(st.st_ino))
            guard let a = try? attributes(st, id: id) else { return [] }
            var target: [UInt8] = []
            if a.type == .symlink { target = (try? readLink(id)) ?? [] }
            var records = [created(dirID, name, a, target: target)]
            if a.type != .symlink {
                // The times too: an exclusive create keeps its verifier in them.
                records.append(.setAttributes(fileID: id, path: change.path, AttributeValues(atime: a.atime, mtime: a.mtime)))
            }
            return records
        case .remove, .removeDirectory:
            if let (_, _, st) = objectAt(change.path), let st, UInt64(st.st_ino) == change.inode { return [] }
            if change.fileID != 0, path(of: change.fileID) == change.path {
                // Another link may remain; if none does, the file is gone.
                if (try? relocate(change.fileID, inode: change.inode)) == nil { index.forget(change.fileID) }
                cache.invalidate(change.fileID)
            }
            return [.remove(fileID: change.fileID, path: change.path, isDirectory: change.kind == .removeDirectory)]
        case .rename:
            if let (_, _, st) = objectAt(change.path), let st, UInt64(st.st_ino) == change.inode { return [] }
            guard let (dirID, name, st) = objectAt(change.to), let st, UInt64(st.st_ino) == change.inode else { return [] }
            let id = change.fileID != 0 ? change.fileID : index.id(inode: change.inode, parent: dirID, name: name)
            index.place(id, parent: dirID, name: name, inode: change.inode)
            cache.invalidate(id)
            return [.rename(fileID: id, from: change.path, to: change.to)]
        case .link:
            guard let (_, _, st) = objectAt(change.to), let st, UInt64(st.st_ino) == change.inode else { return [] }
            return [.link(fileID: change.fileID, existing: change.path, new: change.to)]
        }
    }

    /// The identity tag of the object `name` in directory `dirID`.
    private func tag(_ dirID: UInt64, _ name: [UInt8]) throws -> UInt64? {
        try withDirectory(dirID) { fd in
            var tag: UInt64 = 0
            return Self.cString(name) { cnfs_get_file_id(fd, $0, &tag) } == 0 && tag > Self.rootID ? tag : nil
        }
    }
}
