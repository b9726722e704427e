import Glibc

/// What `swiftnfsd status` shows, written by the running server to DIR/status as `key=value`
/// lines (and read back by the command).
public struct JournalStatus: Hashable, Sendable {
    public var pid: Int32
    public var updated: Int64
    public var appendedSequence: UInt64
    public var durableSequence: UInt64
    public var checkpointedSequence: UInt64
    public var uncheckpointedBytes: Int
    public var lastCheckpoint: Int64
    public var degraded: String?

    public init(pid: Int32, updated: Int64, appendedSequence: UInt64, durableSequence: UInt64,
                checkpointedSequence: UInt64, uncheckpointedBytes: Int, lastCheckpoint: Int64, degraded: String?) {
        self.pid = pid; self.updated = updated; self.appendedSequence = appendedSequence
        self.durableSequence = durableSequence; self.checkpointedSequence = checkpointedSequence
        self.uncheckpointedBytes = uncheckpointedBytes; self.lastCheckpoint = lastCheckpoint; self.degraded = degraded
    }

    public var text: String {
        """
        pid=\(pid)
        updated=\(updated)
        appended=\(appendedSequence)
        durable=\(durableSequence)
        checkpointed=\(checkpointedSequence)
        uncheckpointed_bytes=\(uncheckpointedBytes)
        last_checkpoint=\(lastCheckpoint)
        degraded=\(degraded ?? "")

        """
    }

    public init?(text: String) {
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
    }

    public static func path(_ directory: JournalDirectory) -> String { directory.root + "/status" }

    public func write(to directory: JournalDirectory) {
        try? JournalDirectory.writeFileAtomicallyNoSync(Self.path(directory), Array(text.utf8))
    }

    public static func read(from directory: JournalDirectory) -> JournalStatus? {
        (try? JournalDirectory.readFile(path(directory))).flatMap { JournalStatus(text: String(decoding: $0, as: UTF8.self)) }
    }

    /// Whether the process that wrote this status still runs.
    public var serverIsRunning: Bool { kill(pid, 0) == 0 || errno == EPERM }
}

extension JournalDirectory {
    /// Like `writeFileAtomically` without the fsyncs (status is advisory).
    public static func writeFileAtomicallyNoSync(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JournalError(.io, "create \(tmp): errno \(errno)") }
        defer { close(fd) }
        try bytes.withUnsafeBytes { try writeAll(fd, $0, path: tmp) }
        guard rename(tmp, path) == 0 else { throw JournalError(.io, "rename \(tmp): errno \(errno)") }
    }
}
