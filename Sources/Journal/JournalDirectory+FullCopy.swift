import CNFSShims
import FileStore
import Glibc

/// A full copy received from an HA active (`FullCopyStaging`) in the durable directory:
///
///     DIR/full-copy.staging/   being written (removed when a new one starts, or at start)
///     DIR/full-copy.ready/     complete and synced: copy/EXPORTID/..., untagged-ids-EXPORTID, checkpoint
///     DIR/full-copy.old/       the copy it replaces, while it is swapped in
///
/// `installFullCopyIfReady` swaps a ready one in, step by step, each step done at most once
/// and found done when the install runs again after a crash (at start, before the journal is
/// read): the old copy and its untagged-ids files out, the new copy in, its untagged-ids
/// files in, then the journal's segments (another history, or older than the new checkpoint)
/// deleted and the new checkpoint renamed into place, and last the leftovers removed.
extension JournalDirectory {
    package var fullCopyStaging: String { root + "/full-copy.staging" }
    package var fullCopyReady: String { root + "/full-copy.ready" }
    var fullCopyOld: String { root + "/full-copy.old" }

    /// Whether a full copy waits to be installed.
    package var hasFullCopyReady: Bool { access(fullCopyReady, F_OK) == 0 }

    /// Installs a full copy that is ready (see the extension's comment); returns whether there
    /// was one. The caller makes sure no checkpoint and no append runs meanwhile (at start:
    /// before the journal is opened; while following: `JournalWriter.replaceHistory`).
    @discardableResult
    package func installFullCopyIfReady() throws -> Bool {
        guard hasFullCopyReady else { return false }
        let ready = fullCopyReady, old = fullCopyOld
        try Self.makeDirectories(old)
        if access(ready + "/copy", F_OK) == 0 {
            if access(root + "/copy", F_OK) == 0 {
                try Self.removeTree(old + "/copy")
                try Self.move(root + "/copy", to: old + "/copy")
            }
            for name in directoryNames(atPath: root) ?? [] where name.hasPrefix("untagged-ids-") {
                try Self.move(root + "/" + name, to: old + "/" + name)
            }
            try Self.move(ready + "/copy", to: root + "/copy")
        }
        for name in directoryNames(atPath: ready) ?? [] where name.hasPrefix("untagged-ids-") {
            try Self.move(ready + "/" + name, to: root + "/" + name)
        }
        if access(ready + "/checkpoint", F_OK) == 0 {
            for s in segments() { unlink(s.path) }
            Self.syncDirectory(of: segmentsDirectory + "/.")
            unlink(progressFile)
            try Self.move(ready + "/checkpoint", to: checkpointFile)
        }
        try Self.removeTree(ready)
        try Self.removeTree(old)
        Self.syncDirectory(of: ready)
        return true
    }

    /// At start, before the journal is read: a full copy that stopped before it was complete
    /// (the process stopped) is dropped (the active sends it again), and one that was complete
    /// is installed if it was not yet. Returns whether one was installed.
    package func settleFullCopy() throws -> Bool {
        try Self.removeTree(fullCopyStaging)
        return try installFullCopyIfReady()
    }

    /// A node takes over: a full copy received and not installed (the takeover came first) is
    /// of the old active's history, and must not be installed at a later start over what this
    /// node appends as the active. Called once no install runs or will (`refuseReplicated`).
    package func dropFullCopy() throws {
        try Self.removeTree(fullCopyStaging)
        try Self.removeTree(fullCopyReady)
    }

    static func move(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw JournalError(.io, "rename \(from) to \(to): errno \(errno)") }
        syncDirectory(of: to)
    }

    /// `rm -rf path` (never following a symbolic link); nothing there is fine.
    package static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw JournalError(.io, "open \(path): errno \(errno)") }
            try removeContents(fd)
            guard rmdir(path) == 0 else { throw JournalError(.io, "rmdir \(path): errno \(errno)") }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw JournalError(.io, "unlink \(path): errno \(errno)")
        }
    }

    /// Removes everything in the directory `fd` (closed on return).
    private static func removeContents(_ fd: Int32) throws {
        guard let dir = fdopendir(fd) else {
            close(fd)
            throw JournalError(.io, "read a directory to remove: errno \(errno)")
        }
        defer { closedir(dir) }
        let dirFD = dirfd(dir)
        var names: [[CChar]] = []
        while let entry = readdir(dir) {
            let cName = cnfs_dirent_name(entry)!
            if cName[0] == 46 && (cName[1] == 0 || (cName[1] == 46 && cName[2] == 0)) { continue }
            names.append(Array(UnsafeBufferPointer(start: cName, count: strlen(cName) + 1)))
        }
        for name in names {
            if unlinkat(dirFD, name, 0) == 0 || errno == ENOENT { continue }
            guard errno == EISDIR || errno == EPERM else { throw JournalError(.io, "unlink: errno \(errno)") }
            let sub = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard sub >= 0 else { throw JournalError(.io, "open to remove: errno \(errno)") }
            try removeContents(sub)
            guard unlinkat(dirFD, name, AT_REMOVEDIR) == 0 else { throw JournalError(.io, "rmdir: errno \(errno)") }
        }
    }

    /// pwrite(2) of all of `bytes` at `offset`.
    static func pwriteAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "write: errno \(errno)")
            }
            done += n
        }
    }
}
