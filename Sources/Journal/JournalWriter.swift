import Dispatch
import FileStore
import Glibc
import Logging
import NIOCore
import Synchronization

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
///
/// Back-pressure: `waitForRoom` holds a change back, before it is made, while the journal is at
/// its size limit (until a checkpoint frees room) or holds too many bytes no fsync has covered
/// (until one does). `append` itself never waits, so it can run under the file store's locks;
/// the journal overshoots its limits by the changes admitted at once, never more.
package final class JournalWriter: @unchecked Sendable {
    package struct Limits: Sendable {
        /// Changes wait while the journal holds more than this many bytes that the copy does
        /// not have yet.
        package var maxUncheckpointedBytes = 1 << 30
        /// Changes wait while more than this many appended bytes wait for an fsync (they are
        /// also held in memory for a rewrite after a failure): the bound of that memory.
        package var maxUnsyncedBytes = 32 << 20
        /// How long a change waits for a failing journal to recover before it is refused.
        package var failureWait: Double = 10
        /// A new segment is started beyond this size (0: an eighth of the journal's limit,
        /// between 1 MiB and 64 MiB, so the journal on disk stays close to its limit).
        package var segmentSize = 0
        /// How long an fsync waits at most for the changes already under way, so that it
        /// covers them too (see `syncAsLeader`).
        package var collectionWindow = 0.0005
        /// Synchronous replication: how long a caller waits at most for an in-sync standby to
        /// acknowledge its record, before the standby is dropped and records count as durable
        /// once they are here (see `replicate`).
        package var replicaWait = 1.0
        /// Segments are zero-filled ahead of need (see `openSegment`) only while records come
        /// slower than this many bytes a second: zero-filling costs as many bytes written as
        /// the records themselves, which a workload of large writes pays in the durable disk's
        /// bandwidth, while it saves a commit of the file system's journal per fsync, which
        /// a workload of small records (creates, small stable writes) pays in latency.
        package var preallocateBelowBytesPerSecond = 16 << 20
        package init() {}

        var effectiveSegmentSize: Int {
            segmentSize > 0 ? segmentSize : min(64 << 20, max(1 << 20, maxUncheckpointedBytes / 8))
        }

        var effectiveUnsyncedBytes: Int {
            min(maxUnsyncedBytes, max(1 << 20, maxUncheckpointedBytes / 4))
        }
    }

    package struct Status: Sendable {
        package var appendedSequence: UInt64
        package var durableSequence: UInt64
        package var uncheckpointedBytes: Int
        package var unsyncedBytes: Int
        /// Changes held back right now, waiting for room.
        package var waitingForRoom: Int
        package var failure: JournalError?
        /// Why the last checkpoint failed, while it does (the journal cannot shrink).
        package var checkpointFailure: String?
        /// Writes and fsyncs of the journal that failed since the server started.
        package var failures = 0
        /// fsyncs of the journal since the server started.
        package var syncs = 0
        /// Whether the next segment is zero-filled and ready (`journal/next.spare`).
        package var spareReady = false
        /// Synchronous replication: the highest sequence the in-sync standby acknowledged; nil
        /// while none is in sync (callers are answered once their records are here).
        package var replicaAcknowledged: UInt64? = nil
        /// Times a standby kept a caller waiting past `Limits.replicaWait` and was dropped.
        package var replicaFallbacks = 0
        /// Whether callers may be answered once their records are here alone, while no standby
        /// is in sync (see `permitAnsweringAlone`).
        package var answeringAlonePermitted = true
        /// The highest sequence callers may have been told is durable.
        package var answeredThrough: UInt64 = 0
    }

    package let directory: JournalDirectory
    let limits: Limits
    let logger: Logger
    private let condition = Condition()
    /// The HA epoch stamped into the records appended from now on (`JournalRecord.epoch`); 0
    /// outside a cluster. Set by a node that becomes the active, before it serves.
    package let epoch = Atomic<UInt64>(0)

    // Guarded by `condition`.
    private var nextSequence: UInt64
    private var durableSequence: UInt64
    /// Frames appended but not yet covered by an fsync, oldest first, with their sequence.
    private var unsynced: [(UInt64, ByteBuffer)] = []
    private var unsyncedBytes = 0
    private var syncing = false
    /// A leader waits for changes under way to append before its fsync (see `syncAsLeader`).
    private var collecting = false
    private var failure: JournalError?
    /// From a failure until an fsync after it succeeds (logged once each way).
    private var failing = false
    /// The segment appends write to (nil: none open; the next append or sync opens one).
    private var current: SegmentFile?
    /// Segments that were rotated away while holding records no fsync has covered yet.
    private var retired: [SegmentFile] = []
    /// How many failures there have been: a sync clears the failure only if none came meanwhile.
    private var failures = 0
    /// fsyncs done (each covering every record appended before it started).
    private var syncs = 0
    private var uncheckpointedBytes = 0
    private var waitingForRoom = 0
    /// Appends waiting for the one before them to reach the segment.
    private var waitingForOrder = 0
    /// Room held by changes admitted and not yet appended.
    private var reservedBytes = 0
    private var checkpointFailure: String?
    private var stopping = false
    /// The last changes before the stop are taken past the journal's limit (no checkpoint
    /// makes room for them before the last one).
    private var draining = false
    /// The highest sequence appended (in the segment or, while failing, in memory) so far.
    private var appendedThrough: UInt64
    /// Set while this node leads: it appends its own records, none an old active sends.
    private var refusingReplicated = false
    /// Whether `directory.spareSegmentPath` holds a zero-filled segment ready to be taken.
    private var spareReady = false
    /// Whether the thread that prepares spares runs.
    private var preparing = false
    /// When (CLOCK_MONOTONIC seconds) the current segment was opened.
    private var currentOpenedAt = 0.0
    /// Who follows the appends live (`follow`): each is handed every frame as it reaches the
    /// segment, in sequence order.
    private var followers: [JournalFollower] = []
    /// Synchronous replication (`replicate`): what the in-sync standby has acknowledged, nil
    /// while none is in sync.
    private var replicaAcknowledged: UInt64?
    /// Since when (CLOCK_MONOTONIC seconds) the oldest caller still held has been waiting.
    private var heldSince: Double?
    private var replicaFallbacks = 0
    /// Whether callers may be answered from this journal alone while no standby is in sync
    /// (`permitAnsweringAlone`).
    private var aloneAllowed = true
    /// The highest sequence callers may have been told is durable (see `answerable()`).
    private var answeredThrough: UInt64
    /// Callers of `whenDurable` not yet answered, in the order they came (sequences ascend).
    private var held: [(sequence: UInt64, done: @Sendable (JournalError?) -> Void)] = []

    /// Yields when an append takes the bytes the copy lacks past a quarter of the limit: a
    /// checkpoint is due before the interval is over.
    package let pressure: AsyncStream<Void>
    private let pressureContinuation: AsyncStream<Void>.Continuation

    /// Opens the journal in `directory`; `lastSequence` is the highest sequence already in it.
    package init(directory: JournalDirectory, lastSequence: UInt64, uncheckpointedBytes: Int,
                limits: Limits = Limits(), logger: Logger) throws {
        self.directory = directory
        self.limits = limits
        self.logger = logger
        self.nextSequence = lastSequence + 1
        self.durableSequence = lastSequence
        self.appendedThrough = lastSequence
        self.answeredThrough = lastSequence
        self.uncheckpointedBytes = uncheckpointedBytes
        (pressure, pressureContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        try JournalDirectory.makeDirectories(directory.segmentsDirectory)
        // A spare an earlier process prepared is taken if it has the size segments have now.
        unlink(directory.spareSegmentPath + ".tmp")
        var st = stat()
        spareReady = stat(directory.spareSegmentPath, &st) == 0 && Int(st.st_size) == limits.effectiveSegmentSize
        if !spareReady { unlink(directory.spareSegmentPath) }
    }

    /// Waits until the journal has room for a change of about `bytes` (see the type's comment)
    /// and holds that room until `releaseRoom` (call it once the change is appended, or
    /// failed): changes admitted at once cannot together overshoot the limits by more than one
    /// change. Throws when it cannot take one: the durable side has failed for longer than
    /// `failureWait` with the memory for records waiting to be rewritten full, or the journal
    /// is full and checkpoints fail. Call it before making the change, holding no lock of the
    /// store.
    package func waitForRoom(bytes: Int) throws {
        condition.lock()
        defer { condition.unlock() }
        waitingForRoom += 1
        defer { waitingForRoom -= 1 }
        var waited = 0.0
        while true {
            if stopping { throw JournalError(.io, "the server is stopping") }
            let (full, unsyncedFull) = lacksRoom(bytes)
            if !full && !unsyncedFull {
                reservedBytes += bytes
                return
            }
            if waited >= limits.failureWait {
                if unsyncedFull, let failure { throw failure }
                if full, let checkpointFailure { throw JournalError(.noSpace, "journal full and checkpoints fail: \(checkpointFailure)") }
            }
            if unsyncedFull && failure == nil && !syncing && unsyncedBytes > 0 {
                // This caller does the fsync that makes room (for everyone waiting).
                try? syncAndAnswer()
                continue
            }
            condition.wait(for: .room, seconds: 0.1)
            waited += 0.1
        }
    }

    /// `waitForRoom` without the wait: takes the room if it is there now, else returns false
    /// (background work that can come back later).
    package func reserveRoom(bytes: Int) -> Bool {
        condition.withLock {
            guard !stopping, failure == nil else { return false }
            let (full, unsyncedFull) = lacksRoom(bytes)
            guard !full && !unsyncedFull else { return false }
            reservedBytes += bytes
            return true
        }
    }

    /// Whether a change of `bytes` would take the journal past its limit (`full`; not while
    /// draining for a stop) or the records waiting for an fsync past theirs. A change alone is
    /// always let in, however large, when nothing else holds room. Called with the lock held.
    private func lacksRoom(_ bytes: Int) -> (full: Bool, unsyncedFull: Bool) {
        let taken = reservedBytes > 0
        let full = !draining && uncheckpointedBytes + reservedBytes + bytes > limits.maxUncheckpointedBytes
            && (taken || uncheckpointedBytes > 0)
        let unsyncedFull = unsyncedBytes + reservedBytes + bytes > limits.effectiveUnsyncedBytes && (taken || unsyncedBytes > 0)
        return (full, unsyncedFull)
    }

    /// Gives back room that `waitForRoom` held.
    package func releaseRoom(bytes: Int) {
        condition.withLock {
            reservedBytes -= bytes
            if waitingForRoom > 0 { condition.broadcast(.room) }
            if collecting { condition.broadcast(.appended) }
        }
    }

    /// Appends a change, writes it to the segment, and returns its sequence. Never waits.
    @discardableResult
    package func append(exportID: UInt64, _ change: JournalChange) -> UInt64 {
        let epoch = epoch.load(ordering: .relaxed)
        return append { JournalFormat.frame(JournalRecord(sequence: $0, exportID: exportID, epoch: epoch, change: change)) }
    }

    /// `append` of a write whose data is in a received buffer (framed without an extra copy).
    @discardableResult
    package func appendWrite(exportID: UInt64, fileID: UInt64, path: [UInt8], offset: UInt64, data: ByteBuffer) -> UInt64 {
        let epoch = epoch.load(ordering: .relaxed)
        return append {
            JournalFormat.frameWrite(sequence: $0, exportID: exportID, epoch: epoch, fileID: fileID, path: path, offset: offset, data: data)
        }
    }

    private func append(framing: (UInt64) -> ByteBuffer) -> UInt64 {
        let sequence = condition.withLock {
            let sequence = nextSequence
            nextSequence += 1
            return sequence
        }
        // Framed outside the lock (a copy and a checksum of up to 1 MiB); written in order under it.
        let frame = framing(sequence)
        condition.lock()
        defer { condition.unlock() }
        // Sequences reach the segment in order: an append whose predecessor is still framing waits.
        while appendedThrough != sequence - 1 {
            waitingForOrder += 1
            condition.wait(for: .order)
            waitingForOrder -= 1
        }
        defer { if waitingForOrder > 0 { condition.broadcast(.order) } }
        take(frame, sequence: sequence)
        return sequence
    }

    /// Appends a frame received from an HA active as it is, under its own sequence, which must
    /// be above every one appended here: a standby's journal holds the active's records byte for
    /// byte (the caller has checked the frame, `JournalFormat.record(inFrame:)`). Never waits.
    package func appendReplicated(sequence: UInt64, frame: ByteBuffer) throws {
        try condition.withLock {
            guard !refusingReplicated else {
                throw JournalError(.damaged, "replicated record \(sequence) refused: this node took over")
            }
            // Nothing of this node's own may be under way: the sequences are the active's.
            guard sequence > appendedThrough, nextSequence == appendedThrough + 1 else {
                throw JournalError(.damaged, "replicated record \(sequence) does not follow record \(appendedThrough)")
            }
            nextSequence = sequence + 1
            take(frame, sequence: sequence)
            if waitingForOrder > 0 { condition.broadcast(.order) }
        }
    }

    /// A standby takes a full copy from its active: `install` (which commits the copy and
    /// swaps it in, deleting the segments: `JournalDirectory.installFullCopyIfReady`) runs under the writer's
    /// lock, with no fsync under way, and the writer then goes on after `sequence`, the full
    /// copy's checkpoint, with nothing in the journal (its old records are of another history,
    /// or older than the checkpoint). Throws, installing nothing, once the node took over
    /// (`refuseReplicated`): a node that serves never has its state swapped under it, and one
    /// that takes over finds the copy either installed or not at all.
    package func replaceHistory(after sequence: UInt64, _ install: () throws -> Void) throws {
        condition.lock()
        defer { condition.unlock() }
        while syncing { condition.wait(for: .durable) }
        guard !refusingReplicated else { throw JournalError(.damaged, "full copy refused: this node took over") }
        guard nextSequence == appendedThrough + 1 else { throw JournalError(.damaged, "full copy refused: an append is under way") }
        try install()
        current = nil
        retired = []
        unsynced = []
        unsyncedBytes = 0
        failure = nil
        nextSequence = sequence + 1
        appendedThrough = sequence
        durableSequence = sequence
        answeredThrough = sequence
        uncheckpointedBytes = 0
        condition.broadcastAll()
    }

    /// Refuses (`true`) or accepts again (`false`) replicated frames. Once it returns with
    /// `true`, no replicated append is under way or will be (they hold the same lock): a node
    /// that takes over calls it before it applies what it received, and again with `false`
    /// when it steps down.
    package func refuseReplicated(_ refuse: Bool) {
        condition.withLock { refusingReplicated = refuse }
    }

    /// Starts handing each frame appended from now on to `follower` (under the writer's lock:
    /// the follower only queues it). Returns the last sequence appended before: every frame
    /// through it is in the segments (unless the journal is failing: then it is in memory only
    /// until a rewrite), and every later one reaches the follower.
    package func follow(_ follower: JournalFollower) -> UInt64 {
        condition.withLock {
            followers.append(follower)
            return appendedThrough
        }
    }

    package func unfollow(_ follower: JournalFollower) {
        condition.withLock { followers.removeAll { $0 === follower } }
    }

    /// The bookkeeping and the write of one frame that is next in sequence. Lock held.
    private func take(_ frame: ByteBuffer, sequence: UInt64) {
        appendedThrough = sequence
        let threshold = limits.maxUncheckpointedBytes / 4
        if uncheckpointedBytes <= threshold && uncheckpointedBytes + frame.readableBytes > threshold {
            pressureContinuation.yield()
        }
        uncheckpointedBytes += frame.readableBytes
        unsyncedBytes += frame.readableBytes
        unsynced.append((sequence, frame))
        // While the durable side is failing, records wait in memory for the rewrite.
        if failure == nil {
            do {
                try write(frame, sequence: sequence)
            } catch {
                fail(error)
            }
        }
        for f in followers { f.appended(frame, sequence: sequence) }
    }

    /// The highest sequence appended so far.
    package var lastAppended: UInt64 {
        condition.withLock { appendedThrough }
    }

    /// Returns once every record up to `sequence` is on stable storage, or throws if the
    /// durable directory cannot take it now. Concurrent callers share one fsync.
    package func waitDurable(_ sequence: UInt64) throws {
        condition.lock()
        defer { condition.unlock() }
        var attempted = false
        while durableSequence < sequence {
            if syncing {
                condition.wait(for: .durable)
                continue
            }
            if attempted, let failure { throw failure }
            attempted = true
            try syncAndAnswer()
        }
        // Holds no one else syncs for are this caller's to sync before it returns.
        leadHeld()
        // Synchronous replication: on the in-sync standby too, for at most `replicaWait`; with
        // none in sync, until answering from this journal alone is permitted.
        var deadline: Double?
        while answerable() < sequence {
            guard replicaAcknowledged != nil else {
                if stopping { throw JournalError(.io, "the server is stopping") }
                deadline = nil
                condition.wait(for: .replicated)
                continue
            }
            let end = deadline ?? Checkpointer.monotonicNow() + limits.replicaWait
            deadline = end
            let left = end - Checkpointer.monotonicNow()
            guard left > 0 else {
                fallBackToLocal()
                continue
            }
            condition.wait(for: .replicated, seconds: left)
        }
    }

    /// Through which sequence callers may be told their records are durable: here, and on the
    /// in-sync standby while there is one; with none, here alone only while that is permitted,
    /// else no further than before (the callers wait). Lock held.
    private func answerable() -> UInt64 {
        let now: UInt64
        if let acknowledged = replicaAcknowledged {
            now = min(acknowledged, durableSequence)
        } else {
            now = aloneAllowed ? durableSequence : answeredThrough
        }
        answeredThrough = max(answeredThrough, now)
        return answeredThrough
    }

    /// Whether callers may be answered from this journal alone while no standby is in sync
    /// (the default). A cluster's active forbids it while etcd may name a standby as holding
    /// everything it answered (`SyncRecord`), and permits it again only once etcd says no
    /// standby does: a standby dropped after `replicaWait`, or gone, then holds answers back
    /// until that is recorded, so that a standby etcd still names never lacks an answered record.
    package func permitAnsweringAlone(_ permitted: Bool) {
        condition.lock()
        defer { condition.unlock() }
        aloneAllowed = permitted
        guard permitted else { return }
        condition.broadcast(.replicated)
        answerHeld()
    }

    /// Whether the standby the journal waits for (`replicate`) holds every record callers may
    /// have been told is durable, those answered before it was waited for included: only then
    /// may a cluster name it as the one that does.
    package var replicaHoldsEveryAnswer: Bool {
        condition.withLock {
            guard let acknowledged = replicaAcknowledged else { return false }
            return acknowledged >= answerable()
        }
    }

    /// Synchronous replication. `acknowledged` is the highest sequence an in-sync standby has
    /// on stable storage (the replication's listener calls this at each acknowledgement), nil
    /// while no standby is in sync. While it is set, `waitDurable` and `whenDurable` answer once
    /// a record is on stable storage here **and** acknowledged by the standby, or once a caller
    /// has waited `Limits.replicaWait` for the standby: then the standby is dropped (logged,
    /// counted in `Status.replicaFallbacks`) and records count as durable once they are here
    /// (if `permitAnsweringAlone`; else once that is permitted), until the next call sets it again.
    package func replicate(acknowledged: UInt64?) {
        condition.lock()
        defer { condition.unlock() }
        replicaAcknowledged = acknowledged
        condition.broadcast(.replicated)
        answerHeld()
    }

    /// Called now and then (the replication's ticker): a standby that has kept a caller of
    /// `whenDurable` waiting past `Limits.replicaWait` is dropped, as `waitDurable` does.
    package func checkReplicaWait() {
        condition.lock()
        defer { condition.unlock() }
        guard replicaAcknowledged != nil, let heldSince, Checkpointer.monotonicNow() - heldSince > limits.replicaWait,
              let first = held.first, first.sequence <= durableSequence else { return }
        fallBackToLocal()
    }

    /// The standby kept a caller waiting too long: answered from the local journal alone. Lock held.
    private func fallBackToLocal() {
        guard let acknowledged = replicaAcknowledged else { return }
        replicaAcknowledged = nil
        replicaFallbacks += 1
        logger.error("synchronous replication: the standby did not acknowledge in time; answering from this journal alone until it is in sync again",
                     metadata: ["journal.replica_acknowledged": "\(acknowledged)", "journal.durable": "\(durableSequence)",
                                "journal.replica_wait": "\(limits.replicaWait)", "journal.alone_permitted": "\(aloneAllowed)"])
        condition.broadcast(.replicated)
        answerHeld()
    }

    /// Answers, outside the lock, the callers of `whenDurable` whose records are now answerable
    /// or, after a `failure`, all of them (their records are not durable). Lock held.
    private func answerHeld(_ failure: JournalError? = nil) {
        let through = answerable()
        let covered = failure == nil ? held.prefix { $0.sequence <= through }.count : held.count
        guard covered > 0 else { return }
        let answered = held[..<covered]
        held.removeFirst(covered)
        heldSince = held.isEmpty ? nil : Checkpointer.monotonicNow()
        condition.unlock()
        for h in answered { h.done(failure) }
        condition.lock()
    }

    /// `waitDurable` without holding the caller's thread until then: calls `done` once every
    /// record up to `sequence` is on stable storage (nil), or with the error when the durable
    /// directory cannot take it now. When no fsync is running, the caller does one now and
    /// `done` comes before this returns; otherwise the fsync running is followed by one that
    /// covers this record, and `done` comes from the thread that did it. So sixteen changes in
    /// flight hold no thread while they wait (each one's thread takes the next call), and the
    /// thread of one fsync answers all those it covered, without waking each one's own.
    package func whenDurable(_ sequence: UInt64, _ done: @escaping @Sendable (JournalError?) -> Void) {
        condition.lock()
        guard answerable() < sequence else {
            condition.unlock()
            return done(nil)
        }
        if held.isEmpty { heldSince = Checkpointer.monotonicNow() }
        held.append((sequence, done))
        leadHeld()
        condition.unlock()
    }

    /// Syncs for the callers of `whenDurable` until none waits for a record no fsync covered,
    /// unless another thread is syncing (it does the same when it is done). Lock held.
    private func leadHeld() {
        while !syncing, let last = held.last, last.sequence > durableSequence {
            try? syncAndAnswer()
        }
    }

    /// `syncAsLeader`, then answers the callers of `whenDurable` that its fsync covered (or,
    /// when it failed, all of them: their records are not durable), outside the lock.
    private func syncAndAnswer() throws {
        var failed: JournalError?
        do {
            try syncAsLeader()
        } catch {
            failed = error as? JournalError ?? JournalError(.io, "\(error)")
        }
        answerHeld(failed)
        if let failed { throw failed }
    }

    /// Syncs everything appended so far (after writing it again to a fresh segment if the
    /// last write or sync failed). Called with the lock held; releases it around the fsync so
    /// others can append (and queue up for the next fsync) meanwhile.
    ///
    /// Changes admitted with room and not yet appended (their system call under way, or their
    /// turn for the store's change lock) are waited for first, for at most `collectionWindow`,
    /// so that this fsync covers them too rather than each paying one of its own: with many
    /// changes in flight an fsync then covers several (fewer fsyncs, so fewer I/O operations
    /// of the durable disk, which EBS counts), and a lone change is synced at once.
    private func syncAsLeader() throws {
        // Other changes are under way when some hold room or more than this leader's own
        // record waits for an fsync.
        if failure == nil && (reservedBytes > 0 || appendedThrough - durableSequence >= 2) {
            syncing = true  // waiters wait for this fsync meanwhile
            collecting = true
            for _ in 0..<4 {
                condition.wait(for: .appended, seconds: limits.collectionWindow / 4)
                if reservedBytes == 0 { break }
            }
            collecting = false
        }
        let target = appendedThrough
        // Only after a failure: records in a segment that filled up are in `retired`, synced
        // where they are.
        if failure != nil {
            do {
                try rewriteUnsynced()
            } catch {
                fail(error)
                condition.broadcastAll()
                throw failure!
            }
            // Written again: appends from now on go to the new segment as well (if this fsync
            // fails too, the failure is back and the next attempt rewrites them all again).
            failure = nil
        }
        syncing = true
        // References, not descriptor numbers: a segment rotated away or abandoned meanwhile
        // stays open until this fsync is done with it.
        var files = retired
        if let current { files.append(current) }
        retired = []
        if wantsSpare() { prepareSpare() }
        let failuresBefore = failures
        condition.unlock()
        var error: JournalError?
        for f in files where error == nil {
            error = f.sync()
        }
        files = []
        condition.lock()
        syncs += 1
        syncing = false
        if let error {
            fail(error)
        } else {
            // An append that failed during the fsync keeps the failure (its record is not in
            // any segment); everything up to the target was written before and is durable.
            if failures == failuresBefore && failing {
                failing = false
                logger.notice("journal writable again", metadata: ["journal.segment": "\(current?.path ?? "-")"])
            }
            let covered = unsynced.prefix { $0.0 <= target }
            unsyncedBytes -= covered.reduce(0) { $0 + $1.1.readableBytes }
            unsynced.removeFirst(covered.count)
            durableSequence = max(durableSequence, target)
        }
        if error != nil {
            condition.broadcastAll()
        } else {
            condition.broadcast(.durable)
            if waitingForRoom > 0 { condition.broadcast(.room) }
        }
        if let error { throw error }
    }

    /// Records a write or sync failure: logged once, shown in the status, and the segment is
    /// abandoned (the next sync writes every unsynced record to a fresh one).
    private func fail(_ error: Error) {
        let e = error as? JournalError ?? JournalError(.io, "\(error)")
        if !failing {
            failing = true
            logger.error("journal write failed; stable writes and COMMIT fail until it recovers", metadata: ["journal.error": "\(e)"])
        }
        failure = e
        failures += 1
        current = nil
        retired = []
    }

    /// After a failure: every record not yet durable, again, into a new segment.
    private func rewriteUnsynced() throws {
        current = nil
        for (sequence, frame) in unsynced { try write(frame, sequence: sequence) }
    }

    /// Writes a frame to the current segment, starting one (named by the frame's sequence)
    /// when there is none, and retiring it once it is full.
    private func write(_ frame: ByteBuffer, sequence: UInt64) throws {
        let segment = try current ?? openSegment(firstSequence: sequence)
        current = segment
        try segment.append(frame)
        // A segment that grows with each append (no spare was ready when it began) gives way
        // as soon as a preallocated one is.
        if segment.bytes >= limits.effectiveSegmentSize || (!segment.preallocated && spareReady) { retireSegment() }
    }

    /// The next append starts a new segment; the old one is synced by the next fsync.
    private func retireSegment() {
        guard let current else { return }
        // A preallocated segment retired before it filled up (a checkpoint's rotation) gives
        // back its zeros: the journal on disk is its records and one segment being filled.
        current.trimPreallocation()
        retired.append(current)
        self.current = nil
    }

    /// A new segment: the spare if one is ready (its blocks are written already, so an fsync
    /// of appends to it writes the data alone, without the file's size and allocation, which
    /// on a journaling file system also costs a commit of the file system's own journal),
    /// else a file that grows with each append. Either way the next spare is prepared.
    private func openSegment(firstSequence: UInt64) throws -> SegmentFile {
        let path = directory.segmentPath(firstSequence: firstSequence)
        defer { currentOpenedAt = Checkpointer.monotonicNow() }
        // The caller may be a thread acting as an NFS client's user: the journal is the
        // server's own, created with root's identity whoever appends.
        return try CallerIdentity.asRoot {
            if spareReady {
                spareReady = false
                if let segment = try? SegmentFile(adopting: directory.spareSegmentPath, as: path) { return segment }
            }
            return try SegmentFile(creating: path)
        }
    }

    /// Whether a spare is worth preparing now: none is ready or on its way, and the segment
    /// being written has been in use for a second at least and filled slower than
    /// `Limits.preallocateBelowBytesPerSecond`. Lock held.
    private func wantsSpare() -> Bool {
        guard !spareReady, !preparing, failure == nil, let current else { return false }
        let age = Checkpointer.monotonicNow() - currentOpenedAt
        return age >= 1 && Double(current.bytes) / age < Double(limits.preallocateBelowBytesPerSecond)
    }

    /// Starts the thread that zero-fills the next segment, if none is ready and it is not
    /// running; it ends once the spare is ready (or the writer stops). Called with the lock held.
    private func prepareSpare() {
        guard !spareReady, !stopping else { return }
        guard !preparing else { return condition.broadcast(.spare) }
        preparing = true
        DispatchQueue(label: "journal-spare").async { [self] in prepareSpares() }
    }

    private func prepareSpares() {
        condition.lock()
        defer {
            preparing = false
            condition.unlock()
        }
        var backOff = 1.0
        while !stopping && !spareReady {
            let (path, size) = (directory.spareSegmentPath, limits.effectiveSegmentSize)
            condition.unlock()
            // Never the durable disk's last free space (the copy and the journal need it more):
            // a spare only while four segments' worth stays free.
            let roomy = JournalDirectory.availableBytes(directory.segmentsDirectory) >= 4 * size
            let prepared = roomy && CallerIdentity.asRoot { SegmentFile.prepare(path, size: size) }
            condition.lock()
            if prepared {
                spareReady = true
                backOff = 1
            } else {
                // The durable disk fails or is (nearly) full: appends grow their segments meanwhile.
                condition.wait(for: .spare, seconds: backOff)
                backOff = min(backOff * 2, 60)
            }
        }
    }

    /// The checkpointer freed `bytes` of journal.
    package func checkpointed(bytes: Int) {
        condition.withLock {
            uncheckpointedBytes = max(0, uncheckpointedBytes - bytes)
            checkpointFailure = nil
            condition.broadcast(.room)
        }
    }

    /// The last checkpoint failed (nil: it worked): changes at the journal's limit are refused
    /// after `failureWait` rather than held back for ever.
    package func checkpointFailed(_ reason: String?) {
        condition.withLock {
            checkpointFailure = reason
            condition.broadcast(.room)
        }
    }

    /// The server is stopping and copies what it still has into the journal: changes are
    /// no longer held back by the journal's limit (by an fsync still).
    package func drain() {
        condition.withLock {
            draining = true
            condition.broadcast(.room)
        }
    }

    /// The server is stopping: no change is taken any more (`waitForRoom` refuses at once, and
    /// so nothing waits for room that no checkpoint will make), so the journal is final.
    package func stop() {
        condition.withLock {
            stopping = true
            condition.broadcastAll()
        }
    }

    /// Makes the current segment read-only for the checkpointer: the next append starts a new one.
    package func rotate() {
        condition.withLock { retireSegment() }
    }

    package var status: Status {
        condition.withLock {
            Status(appendedSequence: appendedThrough, durableSequence: durableSequence,
                   uncheckpointedBytes: uncheckpointedBytes, unsyncedBytes: unsyncedBytes,
                   waitingForRoom: waitingForRoom, failure: failure, checkpointFailure: checkpointFailure, failures: failures,
                   syncs: syncs, spareReady: spareReady, replicaAcknowledged: replicaAcknowledged,
                   replicaFallbacks: replicaFallbacks, answeringAlonePermitted: aloneAllowed, answeredThrough: answeredThrough)
        }
    }
}

/// One open journal segment. It owns its descriptor: closed when the last reference goes, so
/// a segment rotated away or abandoned after a failure stays open for an fsync still running
/// on it, and a descriptor number is never used after it was closed.
final class SegmentFile: @unchecked Sendable {
    let path: String
    private let fd: Int32
    /// Bytes written, header included (changed under the writer's lock only).
    private(set) var bytes = 0
    /// Whether the file was zero-filled to its size before the first append (see `prepare`).
    let preallocated: Bool

    convenience init(creating path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw JournalError(errno == ENOSPC || errno == EDQUOT ? .noSpace : .io, "create \(path): errno \(errno)")
        }
        try self.init(path: path, fd: fd, preallocated: false)
    }

    /// Takes the zero-filled file at `spare` as the segment `path`: renamed, its header
    /// written over the zeros; appends follow the header. Readers stop at the zeros after the
    /// last frame (`JournalFrameDecoder`: a frame header of zeros ends a segment).
    convenience init(adopting spare: String, as path: String) throws {
        guard rename(spare, path) == 0 else { throw JournalError(.io, "rename \(spare) to \(path): errno \(errno)") }
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw JournalError(.io, "open \(path): errno \(errno)") }
        try self.init(path: path, fd: fd, preallocated: true)
    }

    /// Starts the segment on `fd` (owned from now on, its offset at 0): the header, and the
    /// directory synced so that the file's name is durable too.
    private init(path: String, fd: Int32, preallocated: Bool) throws {
        self.path = path
        self.fd = fd
        self.preallocated = preallocated
        try JournalFaults.check("write", path)
        try JournalFormat.header().withUnsafeBytes { try JournalDirectory.writeAll(fd, $0, path: path) }
        bytes = JournalFormat.headerSize
        JournalDirectory.syncDirectory(of: path)
    }

    /// Writes a zero-filled file of `size` bytes to `path` (through a temporary name, synced,
    /// renamed): the blocks of the next segment, written before any record needs them.
    static func prepare(_ path: String, size: Int) -> Bool {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        do {
            try JournalFaults.check("write", temporary)
            let zeros = [UInt8](repeating: 0, count: 1 << 20)
            var left = size
            while left > 0 {
                let n = min(zeros.count, left)
                try zeros.withUnsafeBytes { try JournalDirectory.writeAll(fd, UnsafeRawBufferPointer(rebasing: $0[..<n]), path: temporary) }
                left -= n
            }
            guard fdatasync(fd) == 0, rename(temporary, path) == 0 else { throw JournalError(.io, "sync or rename \(temporary): errno \(errno)") }
        } catch {
            unlink(temporary)
            return false
        }
        JournalDirectory.syncDirectory(of: path)
        return true
    }

    deinit { close(fd) }

    func append(_ frame: ByteBuffer) throws {
        try JournalFaults.check("write", path)
        try frame.withUnsafeReadableBytes { try JournalDirectory.writeAll(fd, $0, path: path) }
        bytes += frame.readableBytes
    }

    /// Cuts the zeros after the last frame off a preallocated segment (no more appends come).
    func trimPreallocation() {
        guard preallocated else { return }
        _ = ftruncate(fd, off_t(bytes))
    }

    /// fdatasync; the error, if it failed.
    func sync() -> JournalError? {
        if let injected = JournalFaults.injected("fdatasync", path) { return injected }
        if let ms = Failpoint.journalDelayMilliseconds { usleep(UInt32(ms) * 1000) }
        guard fdatasync(fd) != 0 else { return nil }
        let e = errno
        return JournalError(e == ENOSPC || e == EDQUOT ? .noSpace : .io, "fdatasync \(path): errno \(e)")
    }
}
