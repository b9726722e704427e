import CNFSShims
import FileStore
import Glibc
import NIOCore

/// A standby's side of a full copy: writes what an HA active sends (`FullCopyEntry`s, each
/// regular file's content after its entry) into a fresh staging directory inside the durable
/// directory, and once it is complete syncs it (`finish`) and renames it `full-copy.ready`
/// (`markReady`), from where `JournalDirectory.installFullCopyIfReady` swaps it in. Nothing outside the staging
/// directory is touched until then, so a standby stopped halfway keeps its old state and
/// starts the copy again (the stale staging directory is removed first).
///
/// What the peer sends is checked before anything is made of it: paths are plain and
/// relative, and are resolved under the export's staging root without following a symbolic
/// link (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); each object is created once;
/// content comes only for the regular file announced last and never past its size.
/// Used by one task at a time (handed from thread to thread, never shared).
package final class FullCopyStaging: @unchecked Sendable {
    package let directory: JournalDirectory
    package let sequence: UInt64
    let highestFileID: UInt64
    let root: String
    /// Each export's staging root (O_PATH), and its log of untagged ids.
    private var exports: [UInt64: (fd: Int32, untagged: UntaggedIdentities.Log)] = [:]
    /// The regular file whose content comes next.
    private var file: (fd: Int32, size: UInt64, offset: UInt64, mtime: FileTime, atime: FileTime)?
    /// Directories get their times once everything in them is made.
    private var directories: [(exportID: UInt64, path: [UInt8], atime: FileTime, mtime: FileTime)] = []
    package private(set) var entries: UInt64 = 0
    package private(set) var bytes: UInt64 = 0

    /// Starts a full copy of the active's checkpoint at `sequence`: a fresh staging directory.
    package init(directory: JournalDirectory, sequence: UInt64, highestFileID: UInt64) throws {
        self.directory = directory
        self.sequence = sequence
        self.highestFileID = highestFileID
        root = directory.fullCopyStaging
        try JournalDirectory.removeTree(root)
        try JournalDirectory.removeTree(directory.fullCopyReady)
        try JournalDirectory.makeDirectories(root + "/copy")
    }

    deinit { close() }

    /// Closes what is open (the staging directory is left for the next full copy to remove).
    package func close() {
        for e in exports.values {
            _ = Glibc.close(e.fd)
            e.untagged.close()
        }
        exports = [:]
        if let file { _ = Glibc.close(file.fd) }
        file = nil
    }

    static func refuse(_ why: String) -> JournalError { JournalError(.badFullCopy, why) }

    package func take(_ entry: FullCopyEntry) throws {
        guard file == nil else { throw Self.refuse("an entry came before the whole content of the file before it") }
        guard isPlainRelativePath(entry.path) else {
            throw Self.refuse("path \"\(String(decoding: entry.path, as: UTF8.self))\" is not a plain relative path")
        }
        entries += 1
        if entry.path.isEmpty { return try takeRoot(entry) }
        guard let export = exports[entry.exportID] else { throw Self.refuse("an entry of export \(entry.exportID) before its root") }
        guard let (dir, name) = TreeApplier.split(entry.path) else { throw Self.refuse("bad path") }
        let parent = try open(dir, in: export.fd)
        defer { _ = Glibc.close(parent) }
        try cString(name) { p in
            try make(entry, parent, p, export.fd)
            if entry.kind == .hardLink { return }
            try check(fchownat(parent, p, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW), "chown")
            if entry.kind != .symlink { try check(fchmodat(parent, p, mode_t(entry.mode & 0o7777), 0), "chmod") }
            try tag(entry, parent, p, untagged: export.untagged)
            if entry.kind == .directory {
                directories.append((entry.exportID, entry.path, entry.atime, entry.mtime))
            } else if file == nil {
                try check(utimensat(parent, p, [entry.atime.timespec, entry.mtime.timespec], AT_SYMLINK_NOFOLLOW), "utimes")
            }
        }
    }

    /// The root of an export's copy: made with the entry's owner and mode (times at the end).
    private func takeRoot(_ entry: FullCopyEntry) throws {
        guard entry.kind == .directory, exports[entry.exportID] == nil else {
            throw Self.refuse("export \(entry.exportID): its root again, or not a directory")
        }
        let path = root + "/copy/" + String(entry.exportID, radix: 16)
        try check(mkdir(path, 0o700), "mkdir \(path)")
        try check(chown(path, entry.uid, entry.gid), "chown \(path)")
        try check(chmod(path, mode_t(entry.mode & 0o7777)), "chmod \(path)")
        let fd = Glibc.open(path, O_PATH_ | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(.io, "open \(path): errno \(errno)") }
        do {
            exports[entry.exportID] = (fd, try UntaggedIdentities.Log(path: root + "/untagged-ids-" + String(entry.exportID, radix: 16)))
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        directories.append((entry.exportID, [], entry.atime, entry.mtime))
    }

    /// The directory `dir` of an export's staging copy, never through a symbolic link.
    private func open(_ dir: [UInt8], in exportFD: Int32) throws -> Int32 {
        let fd = dir.isEmpty ? dup(exportFD) : cString(dir) { cnfs_open_beneath(exportFD, $0, O_PATH_ | O_DIRECTORY | O_CLOEXEC, 0) }
        guard fd >= 0 else {
            throw Self.refuse("the directory \"\(String(decoding: dir, as: UTF8.self))\" is not in the copy (errno \(errno))")
        }
        return fd
    }

    private func make(_ entry: FullCopyEntry, _ parent: Int32, _ p: UnsafePointer<CChar>, _ exportFD: Int32) throws {
        let mode = mode_t(entry.mode & 0o7777)
        switch entry.kind {
        case .regular:
            let fd = openat(parent, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw errorMaking("a file") }
            if entry.size > 0 {
                file = (fd, entry.size, 0, entry.mtime, entry.atime)
            } else {
                _ = Glibc.close(fd)
            }
        case .directory:
            guard mkdirat(parent, p, 0o700) == 0 else { throw errorMaking("a directory") }
        case .symlink:
            guard !entry.target.contains(0), (cString(entry.target) { symlinkat($0, parent, p) }) == 0 else { throw errorMaking("a symbolic link") }
        case .hardLink:
            guard isPlainRelativePath(entry.target), let (dir, name) = TreeApplier.split(entry.target) else {
                throw Self.refuse("hard link to \"\(String(decoding: entry.target, as: UTF8.self))\": not a plain relative path")
            }
            let from = try open(dir, in: exportFD)
            defer { _ = Glibc.close(from) }
            guard (cString(name) { linkat(from, $0, parent, p, 0) }) == 0 else { throw errorMaking("a hard link") }
        case .fifo:
            guard mknodat(parent, p, S_IFIFO | mode, 0) == 0 else { throw errorMaking("a fifo") }
        case .socket:
            guard mknodat(parent, p, S_IFSOCK | mode, 0) == 0 else { throw errorMaking("a socket") }
        case .characterDevice:
            guard mknodat(parent, p, S_IFCHR | mode, dev_t(entry.rdev)) == 0 else { throw errorMaking("a device") }
        case .blockDevice:
            guard mknodat(parent, p, S_IFBLK | mode, dev_t(entry.rdev)) == 0 else { throw errorMaking("a device") }
        }
    }

    private func errorMaking(_ what: String) -> JournalError {
        errno == EEXIST ? Self.refuse("\(what) of a name that came before") : JournalError(errno == ENOSPC ? .noSpace : .io, "make \(what): errno \(errno)")
    }

    /// The identity: a tag where the object can carry one, else the copy's record of it by
    /// inode number (as a checkpoint keeps it, `UntaggedIdentities`).
    private func tag(_ entry: FullCopyEntry, _ parent: Int32, _ p: UnsafePointer<CChar>, untagged: UntaggedIdentities.Log) throws {
        guard entry.fileID != 0, cnfs_set_file_id(parent, p, entry.fileID) != 0 else { return }
        var st = stat()
        guard fstatat(parent, p, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw JournalError(.io, "stat: errno \(errno)") }
        try untagged.note(inode: UInt64(st.st_ino), id: entry.fileID)
    }

    /// The next bytes of the regular file announced last. Runs of zeros are left as holes.
    package func write(_ data: ByteBuffer) throws {
        guard var f = file else { throw Self.refuse("content without a regular file before it") }
        guard UInt64(data.readableBytes) <= f.size - f.offset else { throw Self.refuse("content past the size of its file") }
        try data.withUnsafeReadableBytes { b in
            guard !b.allSatisfy({ $0 == 0 }) else { return }
            try JournalDirectory.pwriteAll(f.fd, b, at: f.offset)
        }
        f.offset += UInt64(data.readableBytes)
        bytes += UInt64(data.readableBytes)
        file = f
        guard f.offset == f.size else { return }
        defer {
            _ = Glibc.close(f.fd)
            file = nil
        }
        try check(ftruncate(f.fd, off_t(f.size)), "truncate")
        try check(futimens(f.fd, [f.atime.timespec, f.mtime.timespec]), "utimes")
    }

    /// The active sent everything (`entries` of them): the directories' times, everything
    /// synced, the checkpoint written beside the copy. `markReady` then commits it.
    package func finish(entries sent: UInt64) throws {
        guard file == nil else { throw Self.refuse("the end came before the whole content of the last file") }
        guard sent == entries else { throw Self.refuse("the active sent \(sent) entries, \(entries) came") }
        for d in directories.reversed() {
            guard let export = exports[d.exportID] else { continue }
            let times = [d.atime.timespec, d.mtime.timespec]
            if let (dir, name) = TreeApplier.split(d.path) {
                let parent = try open(dir, in: export.fd)
                defer { _ = Glibc.close(parent) }
                try check(cString(name) { utimensat(parent, $0, times, AT_SYMLINK_NOFOLLOW) }, "utimes")
            } else {
                try check(utimensat(AT_FDCWD, root + "/copy/" + String(d.exportID, radix: 16), times, 0), "utimes")
            }
        }
        for e in exports.values { try e.untagged.sync() }
        close()
        let fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(.io, "open \(root): errno \(errno)") }
        defer { _ = Glibc.close(fd) }
        guard cnfs_syncfs(fd) == 0 else { throw JournalError(errno == ENOSPC ? .noSpace : .io, "syncfs \(root): errno \(errno)") }
        try JournalDirectory.writeFileAtomically(root + "/checkpoint", Array("\(sequence)\n\(highestFileID)\n".utf8))
    }

    /// Renames the finished staging directory `full-copy.ready` (durably): from now on it is
    /// installed, even by the next start after a crash. Called under the journal writer's lock
    /// (`JournalWriter.replaceHistory`), so that a node that took over never finds one of the
    /// old active's ready after it dropped what it had (`JournalDirectory.dropFullCopy`).
    package func markReady() throws {
        guard rename(root, directory.fullCopyReady) == 0 else { throw JournalError(.io, "rename \(root): errno \(errno)") }
        JournalDirectory.syncDirectory(of: root)
    }

    private func check(_ r: Int32, _ what: String) throws {
        guard r != 0 else { return }
        throw JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "full copy: \(what): errno \(errno)")
    }

    private func cString<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        try withCPath(bytes, body)
    }
}
