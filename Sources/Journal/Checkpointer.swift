import FileStore
import Glibc
import Logging
import NIOConcurrencyHelpers

/// Brings the durable copy up to date from the journal, then trims the journal.
///
/// One checkpoint: read the durable records after the last checkpoint, apply them to each
/// export's copy, sync the copies' file system and the identity indexes, record the new
/// checkpoint durably, and delete the segments it covers. Interrupted anywhere, the next
/// checkpoint (or recovery at start) applies the same records again, which is harmless.
package final class Checkpointer: @unchecked Sendable {
    package struct Report: Sendable {
        package var appliedThrough: UInt64
        package var records: Int
        package var bytes: Int
        package var damages: [JournalLog.Damage]
        /// The copies are up to date but the journal was not trimmed (no server to sync its trees).
        package var journalKept: Bool
        /// A deadline stopped it before every record was applied (the next one goes on).
        package var stoppedEarly = false
        /// Skipped: a full copy holds the checkpoints (`hold`).
        package var held = false
    }

    let directory: JournalDirectory
    let writer: JournalWriter
    let logger: Logger
    /// Called before a checkpoint is recorded: makes the served trees and their identity
    /// indexes durable, so that after an OS crash they hold every change the journal forgets.
    let syncServed: @Sendable () throws -> Void
    private let lock = Condition()
    private var lastCheckpointTime: Double = 0
    private var lastError: String?
    /// Set by `interrupt`: the checkpoint running stops after the record it is applying.
    private let interrupted = NIOLockedValueBox(false)
    /// Holds taken (`hold`) and not released: checkpoints are skipped meanwhile. Under `lock`.
    private var holds = 0

    package init(directory: JournalDirectory, writer: JournalWriter, logger: Logger,
                syncServed: @escaping @Sendable () throws -> Void) {
        self.directory = directory
        self.writer = writer
        self.logger = logger
        self.syncServed = syncServed
    }

    /// Runs one checkpoint (callers serialize: the background loop and `swiftnfsd checkpoint`).
    /// With a `deadline` (CLOCK_MONOTONIC seconds) it stops applying records there and leaves
    /// the rest to the next one (a stop under load must not wait for a whole journal).
    @discardableResult
    package func checkpoint(deadline: Double? = nil) throws -> Report {
        try lock.withLock {
            guard holds == 0 else {
                return Report(appliedThrough: directory.checkpointedSequence(), records: 0, bytes: 0, damages: [], journalKept: true,
                              stoppedEarly: true, held: true)
            }
            do {
                let writer = self.writer
                let interrupted = self.interrupted
                let report = try Self.checkpoint(directory: directory, through: writer.status.durableSequence,
                                                 syncServed: syncServed,
                                                 shouldStop: { interrupted.withLockedValue { $0 } || deadline.map { Self.monotonicNow() >= $0 } ?? false },
                                                 rotate: { writer.rotate() })
                writer.checkpointed(bytes: report.bytes)
                if !report.stoppedEarly {
                    var now = timespec()
                    clock_gettime(CLOCK_REALTIME, &now)
                    lastCheckpointTime = Double(now.tv_sec)
                }
                lastError = nil
                for d in report.damages { logger.error("journal damage", metadata: ["journal.damage": "\(d)"]) }
                return report
            } catch {
                lastError = "\(error)"
                writer.checkpointFailed("\(error)")
                throw error
            }
        }
    }

    /// Stops a checkpoint that is running (the server is stopping: its last checkpoint has a
    /// deadline of its own) and every later one until `resume`.
    package func interrupt() {
        interrupted.withLockedValue { $0 = true }
    }

    package func resume() {
        interrupted.withLockedValue { $0 = false }
    }

    /// Keeps the copies and the journal as they are until the hold is released: waits for a
    /// checkpoint that is running, then skips every checkpoint (they neither change the copies
    /// nor delete a segment) while a hold is taken. A full copy for a standby holds them so
    /// that what it reads stays consistent with the checkpointed sequence, and the segments
    /// after it stay there for the standby to catch up from. The journal's own back-pressure
    /// still applies meanwhile: changes wait for room once it is at its limit.
    package func hold() -> Hold {
        lock.withLock { holds += 1 }
        return Hold(self)
    }

    /// A hold on checkpoints (`hold`); released once, by `release` or when it goes away.
    package final class Hold: @unchecked Sendable {
        private var checkpointer: Checkpointer?
        private let lock = NIOLock()

        init(_ checkpointer: Checkpointer) { self.checkpointer = checkpointer }

        deinit { release() }

        package func release() {
            guard let c = lock.withLock({ () -> Checkpointer? in
                defer { checkpointer = nil }
                return checkpointer
            }) else { return }
            c.lock.withLock { c.holds -= 1 }
        }
    }

    /// Seconds since the epoch of the last successful checkpoint (0 if none this run), and the
    /// last failure if the last attempt failed.
    package var lastResult: (time: Double, error: String?) {
        lock.withLock { (lastCheckpointTime, lastError) }
    }

    /// The checkpoint itself, without a writer. `syncServed` nil (no server, so nothing can
    /// make its served trees durable): the copies are brought up to date but the journal is
    /// kept, the copies' progress being recorded as past it, because a served tree that lost
    /// its latest changes in an OS crash gets them back from the journal at the server's start.
    ///
    /// Records are applied to the copies once: a checkpoint that was interrupted is resumed
    /// after the last record it applied (`CopyProgressMarker`). Replaying path-named changes
    /// onto a tree that already has later ones is not always harmless (a hard link made again
    /// whose later rename can no longer find its directory), so only a copy whose progress
    /// was lost in a reboot is treated as possibly ahead.
    package static func checkpoint(directory: JournalDirectory, through limit: UInt64,
                                  syncServed: (() throws -> Void)?, shouldStop: (() -> Bool)? = nil,
                                  rotate: () -> Void) throws -> Report {
        let start = directory.checkpointedSequence()
        guard limit > start else {
            return Report(appliedThrough: start, records: 0, bytes: 0, damages: [], journalKept: false)
        }
        rotate()
        let progress = directory.copyProgress()
        var applied = start
        if case .through(let p) = progress { applied = max(start, p) }
        let marker = try CopyProgressMarker(directory, through: applied)
        var appliers: [UInt64: TreeApplier] = [:]
        defer { for a in appliers.values { a.close() } }
        var last = start, records = 0, bytes = 0, stoppedEarly = false
        var replies = CheckpointedReplies()
        var highestFileID = directory.highestCheckpointedFileID()
        struct Stop: Error {}
        let (damages, _) = try { () throws -> ([JournalLog.Damage], UInt64) in
            do {
                return try JournalLog.forEach(directory, after: start, through: limit) { r, frameBytes in
                    // A record that changes no file (a reply) has nothing to apply, and may be of no
                    // export; the newest replies are kept past the segments (`CheckpointedReplies`).
                    replies.add(r)
                    if r.sequence > applied, r.change.changesFiles {
                        if let shouldStop, records % 64 == 0, shouldStop() { throw Stop() }
                        if appliers[r.exportID] == nil {
                            appliers[r.exportID] = try TreeApplier(root: directory.copyDirectory(exportID: r.exportID),
                                                                   mayBeAhead: progress == .unknown,
                                                                   untaggedLog: directory.untaggedIdentitiesPath(exportID: r.exportID))
                        }
                        try appliers[r.exportID]!.apply(r.change)
                        marker.advance(to: r.sequence)
                    }
                    last = r.sequence
                    highestFileID = max(highestFileID, r.change.fileID)
                    records += 1
                    bytes += frameBytes
                }
            } catch is Stop {
                stoppedEarly = true
                return ([], 0)
            }
        }()
        for a in appliers.values { try a.sync() }
        // Stopped at the deadline: the marker keeps the progress, the next checkpoint resumes.
        guard !stoppedEarly else {
            return Report(appliedThrough: start, records: records, bytes: 0, damages: [], journalKept: true, stoppedEarly: true)
        }
        guard last > start else {
            marker.remove()
            return Report(appliedThrough: start, records: 0, bytes: 0, damages: damages, journalKept: false)
        }
        guard let syncServed else {
            return Report(appliedThrough: last, records: records, bytes: 0, damages: damages, journalKept: true)
        }
        try syncServed()
        // A cache: failing to keep it never holds up the checkpoint (the journal would grow).
        try? CheckpointedReplies.save(replies, directory)
        try directory.setCheckpointedSequence(last, fileIDsThrough: highestFileID)
        marker.remove()
        // Delete the segments every record of which is now in the copy: all but the newest
        // whose successor starts at or before the checkpoint.
        let segments = directory.segments()
        for (i, s) in segments.enumerated() where i + 1 < segments.count && segments[i + 1].first <= last + 1 {
            unlink(s.path)
        }
        return Report(appliedThrough: last, records: records, bytes: bytes, damages: damages, journalKept: false)
    }

    /// CLOCK_MONOTONIC in seconds (the server's clock, as deadlines are given).
    package static func monotonicNow() -> Double {
        let now = SystemClock().now.components
        return Double(now.seconds) + Double(now.attoseconds) / 1e18
    }
}
