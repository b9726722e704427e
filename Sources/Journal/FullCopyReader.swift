import CNFSShims
import FileStore
import Glibc
import NIOCore

/// Reads an HA active's durable copies for a full copy, a batch at a time (each batch bounded
/// in bytes, so the sender's memory is too): every export's copy depth first, each directory
/// before what it holds, each regular file's content after its entry in chunks. Never follows
/// a symbolic link. The caller keeps the copies from changing meanwhile (`Checkpointer.hold`).
/// Used by one task at a time (handed from thread to thread, never shared).
package final class FullCopyReader: @unchecked Sendable {
    package enum Piece: Sendable {
        case entry(FullCopyEntry)
        /// The next bytes of the regular file whose entry came last.
        case data(ByteBuffer)
    }

    /// The largest chunk of file content in one piece.
    package static let chunkBytes = 1 << 20

    let directory: JournalDirectory
    private var exports: [UInt64]
    /// The export being read, with its untagged objects' ids by inode number.
    private var exportID: UInt64 = 0
    private var untagged: [UInt64: UInt64] = [:]
    /// Regular files with more than one name: the path of the first name met, by inode.
    private var firstNames: [UInt64: [UInt8]] = [:]
    /// The directories open, innermost last, with their paths.
    private var stack: [(dir: OpaquePointer, path: [UInt8])] = []
    /// The regular file whose content is being read, and how much of it is left.
    private var file: (fd: Int32, left: UInt64)?
    package private(set) var entries = 0
    package private(set) var contentBytes: UInt64 = 0

    package init(directory: JournalDirectory) {
        self.directory = directory
        exports = (directoryNames(atPath: directory.root + "/copy") ?? []).compactMap { UInt64($0, radix: 16) }.sorted()
    }

    deinit {
        for d in stack { closedir(d.dir) }
        if let file { close(file.fd) }
    }

    package var isDone: Bool { exports.isEmpty && stack.isEmpty && file == nil }

    /// Whether any export's copy holds anything.
    package static func copiesHoldAnything(_ directory: JournalDirectory) -> Bool {
        (directoryNames(atPath: directory.root + "/copy") ?? []).contains { name in
            !(directoryNames(atPath: directory.root + "/copy/" + name) ?? []).isEmpty
        }
    }

    /// The regular files and their bytes in the copies (for the progress a standby shows).
    package static func totals(_ directory: JournalDirectory) -> (files: UInt64, bytes: UInt64) {
        var files: UInt64 = 0, bytes: UInt64 = 0
        for name in directoryNames(atPath: directory.root + "/copy") ?? [] {
            let fd = open(directory.root + "/copy/" + name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            walkTree(fd, ()) { entry, _ in
                var st = stat()
                if !entry.isDirectory, fstatat(entry.directory, entry.cName, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFREG {
                    files += 1
                    bytes += UInt64(st.st_size)
                }
                return ()
            }
        }
        return (files, bytes)
    }

    /// The next pieces, about `maxBytes` of them at most (one piece at least); none once done.
    package func next(maxBytes: Int = 4 << 20) throws -> [Piece] {
        var out: [Piece] = []
        var bytes = 0
        while bytes < maxBytes, let piece = try nextPiece() {
            if case .data(let b) = piece { bytes += b.readableBytes } else { bytes += 128 }
            out.append(piece)
        }
        return out
    }

    private func nextPiece() throws -> Piece? {
        if let f = file { return try readChunk(f) }
        while true {
            guard let top = stack.last else {
                guard !exports.isEmpty else { return nil }
                return try openExport(exports.removeFirst())
            }
            guard let dirent = readdir(top.dir) else {
                closedir(stack.removeLast().dir)
                continue
            }
            let cName = cnfs_dirent_name(dirent)!
            if cName[0] == 46 && (cName[1] == 0 || (cName[1] == 46 && cName[2] == 0)) { continue }
            let name = Array(UnsafeBufferPointer(start: UnsafeRawPointer(cName).assumingMemoryBound(to: UInt8.self), count: strlen(cName)))
            let path = top.path.isEmpty ? name : top.path + [UInt8(ascii: "/")] + name
            if let piece = try visit(dirfd(top.dir), cName, path) { return piece }
        }
    }

    private func openExport(_ id: UInt64) throws -> Piece? {
        exportID = id
        untagged = UntaggedIdentities.load(directory.untaggedIdentitiesPath(exportID: id))
        firstNames = [:]
        let root = directory.copyDirectory(exportID: id)
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0, let dir = fdopendir(fd) else { throw JournalError(.io, "open \(root): errno \(errno)") }
        stack.append((dir, []))
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw JournalError(.io, "stat \(root): errno \(errno)") }
        return .entry(entry([], st, kind: .directory, fileID: 0))
    }

    /// The entry of one object (nil: one of a kind a copy does not hold, skipped); a directory
    /// is entered, a regular file's content read next.
    private func visit(_ dirFD: Int32, _ cName: UnsafePointer<CChar>, _ path: [UInt8]) throws -> Piece? {
        var st = stat()
        guard fstatat(dirFD, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return nil }
            throw JournalError(.io, "stat in the copy: errno \(errno)")
        }
        var tag: UInt64 = 0
        let fileID = cnfs_get_file_id(dirFD, cName, &tag) == 0 ? tag : untagged[UInt64(st.st_ino)] ?? 0
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            let fd = openat(dirFD, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0, let dir = fdopendir(fd) else { throw JournalError(.io, "open a directory of the copy: errno \(errno)") }
            stack.append((dir, path))
            return .entry(entry(path, st, kind: .directory, fileID: fileID))
        case S_IFREG:
            if st.st_nlink > 1 {
                if let first = firstNames[UInt64(st.st_ino)] {
                    return .entry(entry(path, st, kind: .hardLink, fileID: fileID, target: first))
                }
                firstNames[UInt64(st.st_ino)] = path
            }
            let fd = openat(dirFD, cName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw JournalError(.io, "open a file of the copy: errno \(errno)") }
            if st.st_size > 0 { file = (fd, UInt64(st.st_size)) } else { close(fd) }
            return .entry(entry(path, st, kind: .regular, fileID: fileID, size: UInt64(st.st_size)))
        case S_IFLNK:
            var target = [UInt8](repeating: 0, count: Int(PATH_MAX))
            let n = target.withUnsafeMutableBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { readlinkat(dirFD, cName, $0.baseAddress!, $0.count) }
            }
            guard n >= 0 else { throw JournalError(.io, "readlink in the copy: errno \(errno)") }
            return .entry(entry(path, st, kind: .symlink, fileID: fileID, target: Array(target[..<n])))
        case S_IFIFO: return .entry(entry(path, st, kind: .fifo, fileID: fileID))
        case S_IFSOCK: return .entry(entry(path, st, kind: .socket, fileID: fileID))
        case S_IFCHR: return .entry(entry(path, st, kind: .characterDevice, fileID: fileID))
        case S_IFBLK: return .entry(entry(path, st, kind: .blockDevice, fileID: fileID))
        default: return nil
        }
    }

    private func entry(_ path: [UInt8], _ st: stat, kind: FullCopyEntry.Kind, fileID: UInt64, size: UInt64 = 0,
                       target: [UInt8] = []) -> FullCopyEntry {
        entries += 1
        return FullCopyEntry(exportID: exportID, path: path, kind: kind, mode: UInt32(st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid,
                             rdev: UInt64(st.st_rdev),
                             atime: FileTime(seconds: Int64(st.st_atim.tv_sec), nanoseconds: UInt32(st.st_atim.tv_nsec)),
                             mtime: FileTime(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: UInt32(st.st_mtim.tv_nsec)),
                             size: size, fileID: fileID, target: target)
    }

    private func readChunk(_ f: (fd: Int32, left: UInt64)) throws -> Piece {
        let want = Int(min(UInt64(Self.chunkBytes), f.left))
        var buffer = ByteBufferAllocator().buffer(capacity: want)
        var error: Int32 = 0
        let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { b in
            var r = read(f.fd, b.baseAddress, want)
            while r < 0 && errno == EINTR { r = read(f.fd, b.baseAddress, want) }
            if r < 0 { error = errno }
            return max(0, r)
        }
        guard n > 0 else {
            close(f.fd)
            file = nil
            // The copy is held still: a file that shrinks under the reader is an error of the disk.
            throw JournalError(.io, error == 0 ? "a file of the copy shrank while it was read" : "read in the copy: errno \(error)")
        }
        contentBytes += UInt64(n)
        if f.left - UInt64(n) == 0 {
            close(f.fd)
            file = nil
        } else {
            file = (f.fd, f.left - UInt64(n))
        }
        return .data(buffer)
    }
}
