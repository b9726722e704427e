import FileStore
import Glibc
import Logging
import NIOCore

/// Appends records to the journal and makes them durable with group commit: callers that wait
/// for durability while an fsync is running are all covered by the next one, so concurrent
/// stable writes share fsyncs instead of queueing for one each.
///
/// Every record is written to the current segment as it is appended (write(2): into the page
/// cache, no fsync), so a crash of the server process never loses a change the served tree
/// already has: the kernel still writes the record out. `waitDurable` adds the fsync.
///
/// A record is also kept in memory until an fsync has covered it. If writing or syncing fails
/// (no space, I/O error), the records are written again to a fresh segment on the next
/// attempt: after a failed fsync Linux may have dropped the dirty pages, so what was written to
/// the old segment cannot be trusted to reach the disk.
public final class JournalWriter: @unchecked Sendable {
    public struct Limits: Sendable {
        /// A new segment is started beyond this size.
        public var segmentSize = 64 << 20
        /// Appends wait (back-pressure) while the journal holds more than this many bytes
        /// that the copy does not have yet.
        public var maxUncheckpointedBytes = 1 << 30
        public init() {}
    }

    public struct Status: Sendable {
        public var appendedSequence: UInt64
        public var durableSequence: UInt64
        public var uncheckpointedBytes: Int
        public var failure: JournalError?
    }

    let directory: JournalDirectory
    let limits: Limits
    let logger: Logger
    private let condition = Condition()

    // Guarded by `condition`.
    private var nextSequence: UInt64
    private var durableSequence: UInt64
    /// Frames appended but not yet covered by an fsync, oldest first, with their sequence.
    private var unsynced: [(UInt64, ByteBuffer)] = []
    private var syncing = false
    private var failure: JournalError?
    /// The segment appends write to (-1: none open; the next append or sync opens one).
    private var segmentFD: Int32 = -1
    private var segmentPath = ""
    private var segmentBytes = 0
    /// Segments that were rotated away while holding records no fsync has covered yet.
    private var retiredFDs: [Int32] = []
    /// How many failures there have been: a sync clears the failure only if none came meanwhile.
    private var failures = 0
    private var uncheckpointedBytes = 0

    /// Opens the journal in `directory`; `lastSequence` is the highest sequence already in it.
    public init(directory: JournalDirectory, lastSequence: UInt64, uncheckpointedBytes: Int,
                limits: Limits = Limits(), logger: Logger) throws {
        self.directory = directory
        self.limits = limits
        self.logger = logger
        self.nextSequence = lastSequence + 1
        self.durableSequence = lastSequence
        self.uncheckpointedBytes = uncheckpointedBytes
        try JournalDirectory.makeDirectories(directory.segmentsDirectory)
    }

    deinit {
        if segmentFD >= 0 { close(segmentFD) }
        for fd in retiredFDs { close(fd) }
    }

    /// Appends a change, writes it to the segment, and returns its sequence. Waits while the
    /// journal is over its size limit (the checkpointer makes room); never drops anything.
    @discardableResult
    public func append(exportID: UInt64, _ change: JournalChange) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        while uncheckpointedBytes > limits.maxUncheckpointedBytes {
            condition.wait(seconds: 1)
        }
        let sequence = nextSequence
        nextSequence += 1
        let frame = JournalFormat.frame(JournalRecord(sequence: sequence, exportID: exportID, change: change))
        uncheckpointedBytes += frame.readableBytes
        unsynced.append((sequence, frame))
        // While the durable side is failing, records wait in memory for the rewrite.
        if failure == nil {
            do {
                if segmentFD < 0 { try openSegment(firstSequence: sequence) }
                try write(frame)
            } catch {
                fail(error)
            }
        }
        return sequence
    }

    /// The highest sequence appended so far.
    public var lastAppended: UInt64 {
        condition.withLock { nextSequence - 1 }
    }

    /// Returns once every record up to `sequence` is on stable storage, or throws if the
    /// durable directory cannot take it now. Concurrent callers share one fsync.
    public func waitDurable(_ sequence: UInt64) throws {
        condition.lock()
        defer { condition.unlock() }
        var attempted = false
        while durableSequence < sequence {
            if syncing {
                condition.wait()
                continue
            }
            if attempted, let failure { throw failure }
            attempted = true
            try syncAsLeader()
        }
    }

    /// Syncs everything appended so far (after writing it again to a fresh segment if the
    /// last write or sync failed). Called with the lock held; releases it around the fsync so
    /// others can append (and queue up for the next fsync) meanwhile.
    private func syncAsLeader() throws {
        let target = nextSequence - 1
        if failure != nil || (segmentFD < 0 && !unsynced.isEmpty) {
            do {
                try rewriteUnsynced()
            } catch {
                fail(error)
                condition.broadcast()
                throw failure!
            }
        }
        syncing = true
        // Their own descriptors: an append may rotate the segment while the fsync runs.
        let fds = (retiredFDs + (segmentFD >= 0 ? [segmentFD] : [])).map { dup($0) }
        let retired = retiredFDs
        retiredFDs = []
        let path = segmentPath
        let failuresBefore = failures
        condition.unlock()
        var error: JournalError?
        for fd in fds where error == nil {
            if let injected = JournalFaults.injected("fdatasync", path) {
                error = injected
                break
            }
            if fd < 0 || fdatasync(fd) != 0 {
                error = JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "fdatasync \(path): errno \(errno)")
            }
        }
        for fd in fds where fd >= 0 { close(fd) }
        for fd in retired { close(fd) }
        condition.lock()
        syncing = false
        if let error {
            fail(error)
        } else {
            // An append that failed during the fsync keeps the failure (its record is not in
            // any segment); everything up to the target was written before and is durable.
            if failures == failuresBefore {
                if failure != nil {
                    logger.notice("journal writable again", metadata: ["journal.segment": "\(segmentPath)"])
                }
                failure = nil
            }
            unsynced.removeFirst(unsynced.prefix { $0.0 <= target }.count)
            durableSequence = max(durableSequence, target)
        }
        condition.broadcast()
        if let error { throw error }
    }

    /// Records a write or sync failure: logged once, shown in the status, and the segment is
    /// abandoned (the next sync writes every unsynced record to a fresh one).
    private func fail(_ error: Error) {
        let e = error as? JournalError ?? JournalError(.io, "\(error)")
        if failure == nil {
            logger.error("journal write failed; stable writes and COMMIT fail until it recovers", metadata: ["journal.error": "\(e)"])
        }
        failure = e
        failures += 1
        if segmentFD >= 0 { close(segmentFD) }
        segmentFD = -1
        for fd in retiredFDs { close(fd) }
        retiredFDs = []
    }

    /// After a failure: every record not yet durable, again, into a new segment.
    private func rewriteUnsynced() throws {
        if segmentFD >= 0 { close(segmentFD) }
        segmentFD = -1
        guard let first = unsynced.first?.0 else { return }
        try openSegment(firstSequence: first)
        for (_, frame) in unsynced { try write(frame) }
    }

    private func write(_ frame: ByteBuffer) throws {
        try JournalFaults.check("write", segmentPath)
        try frame.withUnsafeReadableBytes { try JournalDirectory.writeAll(segmentFD, $0, path: segmentPath) }
        segmentBytes += frame.readableBytes
        if segmentBytes >= limits.segmentSize { retireSegment() }
    }

    /// The next append starts a new segment; the old one is synced by the next fsync.
    private func retireSegment() {
        guard segmentFD >= 0 else { return }
        retiredFDs.append(segmentFD)
        segmentFD = -1
    }

    private func openSegment(firstSequence: UInt64) throws {
        let path = directory.segmentPath(firstSequence: firstSequence)
        // The caller may be a thread acting as an NFS client's user: the journal is the
        // server's own, created with root's identity whoever appends.
        let fd = try CallerIdentity.asRoot { () throws -> Int32 in
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "create \(path): errno \(errno)")
            }
            return fd
        }
        do {
            try JournalFaults.check("write", path)
            try JournalFormat.header().withUnsafeBytes { try JournalDirectory.writeAll(fd, $0, path: path) }
        } catch {
            close(fd)
            throw error
        }
        JournalDirectory.syncDirectory(of: path)
        segmentFD = fd
        segmentPath = path
        segmentBytes = JournalFormat.headerSize
    }

    /// The checkpointer freed `bytes` of journal.
    public func checkpointed(bytes: Int) {
        condition.withLock {
            uncheckpointedBytes = max(0, uncheckpointedBytes - bytes)
            condition.broadcast()
        }
    }

    /// Makes the current segment read-only for the checkpointer: the next append starts a new one.
    public func rotate() {
        condition.withLock { retireSegment() }
    }

    public var status: Status {
        condition.withLock {
            Status(appendedSequence: nextSequence - 1, durableSequence: durableSequence,
                   uncheckpointedBytes: uncheckpointedBytes, failure: failure)
        }
    }
}
