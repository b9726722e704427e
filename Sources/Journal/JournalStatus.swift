import Glibc

/// What `swiftnfsd status` shows, written by the running server to DIR/status as `key=value`
/// lines (and read back by the command).
package struct JournalStatus: Hashable, Sendable {
    package var pid: Int32
    package var updated: Int64
    package var appendedSequence: UInt64
    package var durableSequence: UInt64
    package var checkpointedSequence: UInt64
    package var uncheckpointedBytes: Int
    package var lastCheckpoint: Int64
    package var degraded: String?
    /// The journal's limit (bytes not yet in the copy before changes are held back).
    package var limitBytes = 0
    /// Appended bytes waiting for an fsync.
    package var unsyncedBytes = 0
    /// Changes held back (back-pressure) when the status was written.
    package var heldBack = 0
    /// The running server's control socket (`swiftnfsd checkpoint` asks through it).
    package var control: String?

    package init(pid: Int32, updated: Int64, appendedSequence: UInt64, durableSequence: UInt64,
                checkpointedSequence: UInt64, uncheckpointedBytes: Int, lastCheckpoint: Int64, degraded: String?) {
        self.pid = pid; self.updated = updated; self.appendedSequence = appendedSequence
        self.durableSequence = durableSequence; self.checkpointedSequence = checkpointedSequence
        self.uncheckpointedBytes = uncheckpointedBytes; self.lastCheckpoint = lastCheckpoint; self.degraded = degraded
    }

    package var text: String {
        """
        pid=\(pid)
        updated=\(updated)
        appended=\(appendedSequence)
        durable=\(durableSequence)
        checkpointed=\(checkpointedSequence)
        uncheckpointed_bytes=\(uncheckpointedBytes)
        last_checkpoint=\(lastCheckpoint)
        degraded=\(degraded ?? "")
        limit_bytes=\(limitBytes)
        unsynced_bytes=\(unsyncedBytes)
        held_back=\(heldBack)
        control=\(control ?? "")

        """
    }

    package init?(text: String) {
        var kv: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            kv[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        guard let pid = kv["pid"].flatMap({ Int32($0) }), let updated = kv["updated"].flatMap({ Int64($0) }),
              let a = kv["appended"].flatMap({ UInt64($0) }), let d = kv["durable"].flatMap({ UInt64($0) }),
              let c = kv["checkpointed"].flatMap({ UInt64($0) }), let u = kv["uncheckpointed_bytes"].flatMap({ Int($0) }),
              let l = kv["last_checkpoint"].flatMap({ Int64($0) }) else { return nil }
        let degraded = kv["degraded"].flatMap { $0.isEmpty ? nil : $0 }
        self.init(pid: pid, updated: updated, appendedSequence: a, durableSequence: d, checkpointedSequence: c,
                  uncheckpointedBytes: u, lastCheckpoint: l, degraded: degraded)
        limitBytes = kv["limit_bytes"].flatMap { Int($0) } ?? 0
        unsyncedBytes = kv["unsynced_bytes"].flatMap { Int($0) } ?? 0
        heldBack = kv["held_back"].flatMap { Int($0) } ?? 0
        control = kv["control"].flatMap { $0.isEmpty ? nil : $0 }
    }

    package static func path(_ directory: JournalDirectory) -> String { directory.root + "/status" }

    package static func read(from directory: JournalDirectory) -> JournalStatus? {
        // The writer overwrites the file in place under an exclusive lock: a shared one here
        // never sees a write half done.
        let fd = open(path(directory), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        flock(fd, LOCK_SH)
        var bytes = [UInt8](repeating: 0, count: JournalStatusFile.size)
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return JournalStatus(text: String(decoding: bytes[0..<n], as: UTF8.self))
    }

    /// Whether the process that wrote this status still runs.
    package var serverIsRunning: Bool { kill(pid, 0) == 0 || errno == EPERM }
}

/// DIR/status as the running server keeps it: one block, allocated once and then overwritten
/// in place, so the status still shows (and says "degraded") when the durable directory is
/// full, where a new file could not be written.
package final class JournalStatusFile: @unchecked Sendable {
    static let size = 4096
    let path: String
    private let lock = Condition()
    private var fd: Int32 = -1  // guarded by `lock`

    package init(_ directory: JournalDirectory) {
        path = JournalStatus.path(directory)
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Writes the status. Advisory: a failure is left to the next call.
    package func write(_ status: JournalStatus) {
        var bytes = Array(status.text.utf8.prefix(Self.size))
        bytes += [UInt8](repeating: UInt8(ascii: "\n"), count: Self.size - bytes.count)
        lock.withLock {
            if fd < 0 {
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                guard fd >= 0 else { return }
            }
            flock(fd, LOCK_EX)
            let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            flock(fd, LOCK_UN)
            if written != Self.size {
                close(fd)
                fd = -1
            }
        }
    }
}
