import FileStore
import Glibc

/// The files of a journal on the durable directory:
///
///     DIR/journal/SSSSSSSSSSSSSSSS.jnl   segments, named by the first sequence they may hold (hex)
///     DIR/journal/next.spare             the next segment, zero-filled ahead of need
///     DIR/checkpoint                     the sequence through which the copy is complete
///     DIR/checkpointing                  while a checkpoint applies records to the copy: how far it got
///     DIR/replies                        the newest REPLY records checkpoints passed (`CheckpointedReplies`)
///     DIR/copy/EXPORTID/...              the checkpointed copy of each export
package struct JournalDirectory: Sendable {
    package let root: String

    package init(root: String) {
        self.root = root
    }

    package var segmentsDirectory: String { root + "/journal" }
    package var checkpointFile: String { root + "/checkpoint" }
    package var repliesFile: String { root + "/replies" }
    package func copyDirectory(exportID: UInt64) -> String { root + "/copy/" + String(exportID, radix: 16) }
    /// The ids of the copy's objects that carry no tag (`UntaggedIdentities`).
    package func untaggedIdentitiesPath(exportID: UInt64) -> String { root + "/untagged-ids-" + String(exportID, radix: 16) }

    /// The next segment, zero-filled ahead of need (not a segment until it is renamed to one).
    package var spareSegmentPath: String { segmentsDirectory + "/next.spare" }

    package func segmentPath(firstSequence: UInt64) -> String {
        let hex = String(firstSequence, radix: 16)
        return segmentsDirectory + "/" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex + ".jnl"
    }

    /// The bytes free for unprivileged use on the file system holding `path` (0 if unknown).
    package static func availableBytes(_ path: String) -> Int {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return Int(s.f_bavail) * Int(s.f_frsize)
    }

    /// The segments, oldest first, with the first sequence each may hold.
    package func segments() -> [(first: UInt64, path: String)] {
        var out: [(UInt64, String)] = []
        for name in directoryNames(atPath: segmentsDirectory) ?? [] {
            guard name.hasSuffix(".jnl"), let first = UInt64(name.dropLast(4), radix: 16) else { continue }
            out.append((first, segmentsDirectory + "/" + name))
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// The checkpointed sequence (0 when there has been none).
    package func checkpointedSequence() -> UInt64 {
        guard let text = try? Self.readFile(checkpointFile) else { return 0 }
        return UInt64(String(decoding: text, as: UTF8.self).split(separator: "\n").first ?? "", radix: 10) ?? 0
    }

    /// The highest file id of any record a checkpoint has applied (0 when none, or recorded by
    /// a version that did not keep it): the file's second line. Ids are never reused, so a
    /// node that rebuilds its served tree from the copy assigns new ids above it, even though
    /// the records of removed files are gone from the journal.
    package func highestCheckpointedFileID() -> UInt64 {
        guard let text = try? Self.readFile(checkpointFile) else { return 0 }
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n")
        return lines.count > 1 ? UInt64(lines[1], radix: 10) ?? 0 : 0
    }

    /// Records a checkpoint durably (write a temporary file, fsync, rename, fsync the directory).
    package func setCheckpointedSequence(_ sequence: UInt64, fileIDsThrough highestFileID: UInt64) throws {
        try Self.writeFileAtomically(checkpointFile, Array("\(sequence)\n\(highestFileID)\n".utf8))
    }

    /// How far the copies got in a checkpoint that stopped before it was recorded.
    package enum CopyProgress: Equatable, Sendable {
        /// No checkpoint was running: the copies are exactly at the checkpointed sequence.
        case none
        /// The copies hold every change through this sequence and none after it.
        case through(UInt64)
        /// The copies may hold some changes after the checkpointed sequence (the machine
        /// restarted since, so writes to them may have been lost out of order).
        case unknown
    }

    var progressFile: String { root + "/checkpointing" }

    /// See `CopyProgress`. The file a running checkpoint keeps (`CopyProgressMarker`) holds the
    /// sequence applied last and the boot it was written in: after a process crash it is exact,
    /// after a reboot it is not to be trusted.
    package func copyProgress() -> CopyProgress {
        guard access(progressFile, F_OK) == 0 else { return .none }
        guard let bytes = try? Self.readFile(progressFile), bytes.count > 8,
              Array(bytes[8...]) == Self.bootID() else { return .unknown }
        return .through((0..<8).reduce(0) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) })
    }

    /// This boot of the machine (the kernel's random boot id).
    static func bootID() -> [UInt8] {
        (try? readFile("/proc/sys/kernel/random/boot_id")) ?? []
    }

    package static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(.io, "open \(path): errno \(errno)") }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw JournalError(.io, "read \(path): errno \(errno)") }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }

    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "write \(path): errno \(errno)")
            }
            done += n
        }
    }

    /// With `durable` false (advisory files such as statistics), without the fsyncs.
    package static func writeFileAtomically(_ path: String, _ bytes: [UInt8], durable: Bool = true) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, durable ? 0o600 : 0o644)
        guard fd >= 0 else { throw JournalError(.io, "create \(tmp): errno \(errno)") }
        do {
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path: tmp) }
            guard !durable || fsync(fd) == 0 else { throw JournalError(.io, "fsync \(tmp): errno \(errno)") }
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw JournalError(.io, "rename \(tmp): errno \(errno)") }
        if durable { syncDirectory(of: path) }
    }

    /// fsync of the directory holding `path`, so a create or rename in it is durable.
    package static func syncDirectory(of path: String) {
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let fd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    package static func makeDirectories(_ path: String) throws {
        var built = ""
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o700) != 0 && errno != EEXIST {
                throw JournalError(.io, "mkdir \(built): errno \(errno)")
            }
        }
    }
}

/// The progress of a running checkpoint, in `DIR/checkpointing`: created durably before the
/// first record is applied to the copies, updated in place (one pwrite, no fsync) after each.
final class CopyProgressMarker {
    let fd: Int32
    let path: String

    init(_ directory: JournalDirectory, through sequence: UInt64) throws {
        path = directory.progressFile
        try JournalDirectory.writeFileAtomically(path, Self.encode(sequence) + JournalDirectory.bootID())
        fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(.io, "open \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    static func encode(_ sequence: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: sequence >> (8 * UInt64($0))) }
    }

    /// Every change through `sequence` is in the copies.
    func advance(to sequence: UInt64) {
        _ = Self.encode(sequence).withUnsafeBytes { pwrite(fd, $0.baseAddress, 8, 0) }
    }

    /// The checkpoint is recorded: the copies are exactly at it.
    func remove() {
        unlink(path)
    }
}
