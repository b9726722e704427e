import FileStore
import Glibc
import Logging
import NIOCore

/// Appends records to the journal and makes them durable with group commit: callers that wait
/// for durability while an fsync is running are all covered by the next one, so concurrent
/// stable writes share fsyncs instead of queueing for one each.
///
/// A record is kept in memory from `append` until an fsync has covered it. If writing or
/// syncing fails (no space, I/O error), the records are written again to a fresh segment on the
/// next attempt: after a failed fsync Linux may have dropped the dirty pages, so what was
/// written to the old segment cannot be trusted to reach the disk.
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
    private var segmentFD: Int32 = -1
    private var segmentPath = ""
    private var segmentBytes = 0
    private var needsNewSegment = true
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
    }

    /// Appends a change and returns its sequence. Waits while the journal is over its size
    /// limit (the checkpointer makes room); never drops anything.
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

    /// Writes and fsyncs everything appended so far. Called with the lock held; releases it
    /// around the I/O so others can append (and queue up for the next fsync) meanwhile.
    private func syncAsLeader() throws {
        syncing = true
        let target = nextSequence - 1
        if needsNewSegment || failure != nil {
            // Start over on a fresh segment with everything not yet durable.
            needsNewSegment = false
            if segmentFD >= 0 { close(segmentFD) }
            segmentFD = -1
        }
        let toWrite = unsynced
        let firstUnsynced = unsynced.first?.0 ?? target + 1
        var fd = segmentFD
        condition.unlock()
        var result: Result<Void, JournalError>
        do {
            // The leader may be a thread acting as an NFS caller: the journal is the server's
            // own, written with root's identity whoever triggered the sync.
            if fd < 0 {
                fd = try CallerIdentity.asRoot { try openSegment(firstSequence: firstUnsynced) }
            }
            var bytes = 0
            for (_, frame) in toWrite {
                try frame.withUnsafeReadableBytes { try JournalDirectory.writeAll(fd, $0, path: segmentPath) }
                bytes += frame.readableBytes
            }
            guard fdatasync(fd) == 0 else {
                throw JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "fdatasync \(segmentPath): errno \(errno)")
            }
            segmentBytes += bytes
            result = .success(())
        } catch let e as JournalError {
            result = .failure(e)
        } catch {
            result = .failure(JournalError(.io, "\(error)"))
        }
        condition.lock()
        syncing = false
        segmentFD = fd
        switch result {
        case .success:
            if failure != nil {
                logger.notice("journal writable again", metadata: ["journal.segment": "\(segmentPath)"])
            }
            failure = nil
            let done = toWrite.last?.0 ?? target
            unsynced.removeFirst(toWrite.count)
            durableSequence = max(durableSequence, min(done, target))
            if segmentBytes >= limits.segmentSize { needsNewSegment = true }
        case .failure(let e):
            if failure == nil {
                logger.error("journal write failed; stable writes and COMMIT fail until it recovers", metadata: ["journal.error": "\(e)"])
            }
            failure = e
            if fd >= 0 { close(fd) }
            segmentFD = -1
        }
        condition.broadcast()
        if case .failure(let e) = result { throw e }
    }

    private func openSegment(firstSequence: UInt64) throws -> Int32 {
        let path = directory.segmentPath(firstSequence: firstSequence)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "create \(path): errno \(errno)")
        }
        do {
            try JournalFormat.header().withUnsafeBytes { try JournalDirectory.writeAll(fd, $0, path: path) }
        } catch {
            close(fd)
            throw error
        }
        JournalDirectory.syncDirectory(of: path)
        // Only the sync leader touches these, while it holds the leadership (`syncing`).
        segmentPath = path
        segmentBytes = JournalFormat.headerSize
        return fd
    }

    /// The checkpointer freed `bytes` of journal.
    public func checkpointed(bytes: Int) {
        condition.withLock {
            uncheckpointedBytes = max(0, uncheckpointedBytes - bytes)
            condition.broadcast()
        }
    }

    /// Makes the current segment read-only for the checkpointer: the next sync starts a new one.
    public func rotate() {
        condition.withLock { needsNewSegment = true }
    }

    public var status: Status {
        condition.withLock {
            Status(appendedSequence: nextSequence - 1, durableSequence: durableSequence,
                   uncheckpointedBytes: uncheckpointedBytes, failure: failure)
        }
    }
}
