import CNFSShims
import FileStore
import Foundation
import Journal
import Logging
import Metrics
import NIOPosix
import Synchronization

/// The write-back journal of a server with a durable directory (the EBS volume): recovery at
/// start, the writer the file stores record into, the periodic flush of UNSTABLE data and the
/// checkpoints. See the README's durability table for what each part guarantees.
final class Durability: Sendable {
    struct Settings: Sendable {
        var directory: String
        /// Records reach stable storage in the journal within this interval.
        var flushInterval: Duration = .milliseconds(500)
        /// When UNSTABLE data is copied into the journal.
        var writeBack = WriteBackSettings()
        /// What the flush and checkpoint intervals are measured on (and the write-back delay).
        var clock: any ServerClock = SystemClock()
        /// The server's control socket, named in the status for `swiftnfsd checkpoint`.
        var controlSocket: String?
        /// A checkpoint runs this often (and sooner when the journal grows past half its bound).
        var checkpointInterval: Duration = .seconds(30)
        var limits = JournalWriter.Limits()
    }

    let settings: Settings
    let directory: JournalDirectory
    let writer: JournalWriter
    let checkpointer: Checkpointer
    let logger: Logger
    /// What the journal held after the last checkpoint when the server started (or when what
    /// an active sent was checkpointed before a rebuild: `checkpointReceived`).
    var recovered: JournalLog.Summary { summary.withLock { $0 } }
    private let summary: Mutex<JournalLog.Summary>
    /// Whether `servedBehindPath` is known to be there (it is written once, not per frame).
    private let servedBehindNoted = Atomic<Bool>(false)
    let statusFile: JournalStatusFile
    /// Copies UNSTABLE data that is due (all of it when true) into the journal.
    let writeBack: @Sendable (Bool) throws -> Void

    var recorder: JournalRecorder { JournalRecorder(writer: writer) }

    /// Opens the journal: reads what is after the last checkpoint (for recovery) and prepares
    /// a writer that continues its sequence.
    init(settings: Settings, syncServed: @escaping @Sendable () throws -> Void,
         writeBack: @escaping @Sendable (Bool) throws -> Void, logger: Logger) throws {
        self.settings = settings
        self.writeBack = writeBack
        self.logger = logger
        directory = JournalDirectory(root: settings.directory)
        statusFile = JournalStatusFile(directory)
        try JournalDirectory.makeDirectories(directory.segmentsDirectory)
        // A standby stopped during a full copy: dropped, or swapped in if it was complete.
        if try directory.settleFullCopy() {
            logger.notice("journal: a full copy received from the HA active was installed", metadata: ["journal.directory": "\(directory.root)"])
        }
        let checkpoint = directory.checkpointedSequence()
        var recovered = JournalLog.summary(directory, after: checkpoint)
        // The replies a checkpoint kept, then those after it: the newest last.
        recovered.replies = Array((CheckpointedReplies.load(directory).entries + recovered.replies).suffix(JournalLog.replyLimit))
        summary = Mutex(recovered)
        for d in recovered.damages {
            if d.damage.isStaleEpoch {
                logger.error("journal: a record of a deposed HA active is rejected, not replayed", metadata: ["journal.damage": "\(d)"])
            } else if d.damage.isTornTail {
                logger.notice("journal: torn last record (a crash during an append); everything before it is recovered",
                              metadata: ["journal.damage": "\(d)"])
            } else {
                logger.error("journal damaged; everything before the damage is recovered", metadata: ["journal.damage": "\(d)"])
            }
        }
        writer = try JournalWriter(directory: directory, lastSequence: recovered.lastSequence,
                                   uncheckpointedBytes: recovered.bytesAfterCheckpoint, limits: settings.limits, logger: logger)
        checkpointer = Checkpointer(directory: directory, writer: writer, logger: logger, syncServed: syncServed)
    }

    /// The replies recorded before the start (those a checkpoint kept, `CheckpointedReplies`,
    /// and those after it), once: what the duplicate request cache starts with. Not kept after that.
    func takeRecoveredReplies() -> [[UInt8]] {
        summary.withLock { s in
            defer { s.replies = [] }
            return s.replies
        }
    }

    /// The highest file id this journal has carried (checkpointed or after the checkpoint):
    /// a store rebuilt from it assigns ids above it (see `FileStore.reserveFileIDs`).
    var highestFileID: UInt64 { max(directory.highestCheckpointedFileID(), recovered.highestFileID) }

    /// The marker that tells a process crash (marker left behind, the served tree has every
    /// change the process made) from a reboot or a new instance (no marker: replay).
    static func markerPath(exportID: UInt64) -> String {
        "/run/swiftnfs/running-" + String(exportID, radix: 16)
    }

    static func isEmptyOrMissing(_ path: String) -> Bool {
        guard let names = directoryNames(atPath: path) else { return true }
        return names.filter { $0 != "lost+found" }.isEmpty
    }

    /// Rebuilds an export whose served tree is gone (a new or restarted instance), or behind
    /// its journal (a standby's: `servedTreesBehind`), from the durable copy. Returns whether
    /// it did.
    func rebuildIfLost(exportID: UInt64, root: String) throws -> Bool {
        let copy = directory.copyDirectory(exportID: exportID)
        // A rebuild that was interrupted (the marker is still there) starts over.
        let marker = rebuildMarker(exportID)
        let interrupted = FileManager.default.fileExists(atPath: marker)
        let behind = servedTreesBehind
        // Lost: the served tree is empty while the copy, or the journal, has content.
        let hasRecords = recovered.hasRecords(of: exportID)
        guard behind || ((interrupted || Self.isEmptyOrMissing(root)) && (!Self.isEmptyOrMissing(copy) || hasRecords)) else {
            return false
        }
        if behind {
            logger.notice("served tree is behind the journal replicated from an active; rebuilding it", metadata: ["journal.export": "\(root)"])
            checkpointReceived()
        } else if interrupted {
            logger.notice("an earlier rebuild was interrupted; starting it again", metadata: ["journal.export": "\(root)"])
        }
        if behind || interrupted {
            for name in directoryNames(atPath: root) ?? [] {
                try FileManager.default.removeItem(atPath: root + "/" + name)
            }
        }
        logger.notice("served tree is empty; rebuilding it from the durable copy", metadata: [
            "journal.export": "\(root)", "journal.copy": "\(copy)",
        ])
        try JournalDirectory.writeFileAtomically(marker, [])
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try copyTree(from: copy, to: root)
        return true
    }

    /// The first time an export with content is served with a durable directory, the copy
    /// starts as a full copy of it (the journal only carries changes from then on). Not when
    /// the journal has records of the export: then the copy is empty only because no
    /// checkpoint has run yet, the records describe the tree from its start, and a copy of
    /// the served tree would be ahead of them.
    func seedCopyIfNeeded(exportID: UInt64, root: String) throws {
        let copy = directory.copyDirectory(exportID: exportID)
        guard Self.isEmptyOrMissing(copy), !Self.isEmptyOrMissing(root),
              !recovered.hasRecords(of: exportID),
              !FileManager.default.fileExists(atPath: rebuildMarker(exportID)) else { return }
        logger.notice("durable copy is empty; copying the served tree into it", metadata: [
            "journal.export": "\(root)", "journal.copy": "\(copy)",
        ])
        try copyTree(from: root, to: copy)
        let applier = try TreeApplier(root: copy)
        defer { applier.close() }
        try applier.sync()
    }

    /// `cp -a` (owners, modes, times, hard links, sparse files and the identity tags), tied to
    /// this process: killed with it, so a copy never goes on changing the tree after a crash.
    func copyTree(from source: String, to destination: String) throws {
        try FileManager.default.createDirectory(atPath: destination, withIntermediateDirectories: true)
        let arguments = ["/bin/cp", "-a", "--reflink=auto", source + "/.", destination + "/"]
        var cStrings = arguments.map { strdup($0) }
        defer { for p in cStrings { free(p) } }
        cStrings.append(nil)
        let status = cnfs_run_tied("/bin/cp", cStrings)
        guard status == 0 else {
            throw ServerStartError(description: "copying \(source) to \(destination) failed (cp exit \(status))")
        }
    }

    /// Creates the export's copy directory, if it is not there yet, with the owner, mode and
    /// times of the served directory's root, so a rebuild gives the root back as it was.
    func ensureCopyRoot(exportID: UInt64, root: String) throws {
        let copy = directory.copyDirectory(exportID: exportID)
        guard !FileManager.default.fileExists(atPath: copy) else { return }
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        var st = stat()
        guard stat(root, &st) == 0 else { return }
        chown(copy, st.st_uid, st.st_gid)
        chmod(copy, st.st_mode & 0o7777)
        let times = [st.st_atim, st.st_mtim]
        utimensat(AT_FDCWD, copy, times, 0)
    }

    func rebuildMarker(_ exportID: UInt64) -> String {
        directory.root + "/rebuilding-" + String(exportID, radix: 16)
    }

    // MARK: Served trees behind a replicated journal

    /// Present while this durable directory's journal holds records received from an HA active
    /// (`ReplicationFollower`) that the served trees have not had: the standby applies them to
    /// its durable copy only (its checkpoints), so the served trees are rebuilt from that copy
    /// when the node takes over or starts (`rebuildIfLost`), by the recovery a lost instance
    /// gets. Durable before the first such record is appended, so no crash loses it.
    var servedBehindPath: String { directory.root + "/served-behind" }

    var servedTreesBehind: Bool { FileManager.default.fileExists(atPath: servedBehindPath) }

    /// Before a replicated record is appended: notes (once) that the served trees fall behind.
    func noteServedTreesBehind() throws {
        guard !servedBehindNoted.load(ordering: .acquiring) else { return }
        try JournalDirectory.writeFileAtomically(servedBehindPath, [])
        JournalDirectory.syncDirectory(of: servedBehindPath)
        servedBehindNoted.store(true, ordering: .releasing)
    }

    /// Every export of this directory was rebuilt: the served trees hold what the journal has.
    func servedTreesCaughtUp() {
        try? FileManager.default.removeItem(atPath: servedBehindPath)
        JournalDirectory.syncDirectory(of: servedBehindPath)
        servedBehindNoted.store(false, ordering: .releasing)
    }

    /// A node takes over: no more frames of the old active are appended (`refuseReplicated`).
    /// Returns whether the served trees are behind (they must then be rebuilt, by
    /// `rebuildIfLost`, before anything is served).
    /// A full copy received and not installed yet is dropped (it is the old active's: installed
    /// at a later start it would replace what this node appends as the active); a node that
    /// cannot drop it does not serve.
    func finishApplying() throws -> Bool {
        writer.refuseReplicated(true)
        try directory.dropFullCopy()
        return servedTreesBehind
    }

    /// Before a served tree that is behind is rebuilt: everything received is made durable and
    /// checkpointed into the copy, so that the rebuild copies it, identities included (the
    /// untagged ones are only in the copy's record of them), rather than replays it; what the
    /// journal holds after that is summarized again. Harmless when it has run already.
    private func checkpointReceived() {
        do {
            try writer.waitDurable(writer.lastAppended)
            try checkpointer.checkpoint()
        } catch {
            // The rebuild replays from the journal what the copy lacks.
            logger.error("checkpoint before a rebuild failed; the journal is replayed instead", metadata: ["journal.error": "\(error)"])
        }
        // The replies stay as they were read at the start (those received since are in the
        // duplicate request cache already: `ReplyJournal.follow`).
        summary.withLock { s in
            let replies = s.replies
            s = JournalLog.summary(directory, after: directory.checkpointedSequence(), replyLimit: 0)
            s.replies = replies
        }
    }

    /// Runs `body` with the ids the durable copy keeps for its untagged objects (symbolic links,
    /// special files: `UntaggedIdentities`), by path: for a served tree rebuilt from the copy,
    /// whose paths are the copy's.
    func withUntaggedIdentities<T>(exportID: UInt64, _ body: (([UInt8]) -> UInt64?) throws -> T) throws -> T {
        let ids = UntaggedIdentities.load(directory.untaggedIdentitiesPath(exportID: exportID))
        guard !ids.isEmpty else { return try body { _ in nil } }
        let copy = try TreeApplier(root: directory.copyDirectory(exportID: exportID))
        defer { copy.close() }
        return try body { path in copy.inode(of: path).flatMap { ids[$0] } }
    }

    /// The rebuild of an export is complete (tree copied, journal replayed, identities settled).
    func rebuildDone(exportID: UInt64) {
        try? FileManager.default.removeItem(atPath: rebuildMarker(exportID))
        JournalDirectory.syncDirectory(of: rebuildMarker(exportID))
    }

    /// Replays the journal after the last checkpoint onto an export's served tree, when the
    /// tree may lack it (rebuilt, or the machine restarted), and brings the identity index in
    /// line. Idempotent: a replay interrupted by another crash is simply done again.
    func replay(onto store: FileStore, root: String, rebuilt: Bool) throws {
        let marker = Self.markerPath(exportID: store.exportID)
        let processCrashOnly = FileManager.default.fileExists(atPath: marker)
        // A rebuilt tree is the copy: it holds what a checkpoint that stopped applied. After an
        // OS crash the served tree may hold some of the changes, in no particular order.
        let progress = directory.copyProgress()
        var skipThrough: UInt64 = 0
        if rebuilt, case .through(let p) = progress { skipThrough = p }
        guard rebuilt || !processCrashOnly, recovered.hasRecords(of: store.exportID) else { return }
        let applier = try TreeApplier(root: root, mayBeAhead: !rebuilt || progress == .unknown)
        defer { applier.close() }
        var count = 0
        try JournalLog.forEach(directory, after: max(directory.checkpointedSequence(), skipThrough)) { r, _ in
            guard r.exportID == store.exportID, r.change.changesFiles else { return }
            let survivor = rebuilt ? nil : store.survivingLink(of: r.change)
            try applier.apply(r.change)
            // After a rebuild the identities are learned from the tags afterwards.
            if !rebuilt { store.reconcile(r.change, survivingInode: survivor) }
            count += 1
        }
        try applier.sync()
        logger.notice("journal replayed onto the served tree", metadata: [
            "journal.export": "\(root)", "journal.records": "\(count)",
        ])
    }

    /// Settles the namespace change an export's store noted as in progress when the last
    /// process died (see `PendingChange`): if it reached the served tree but not the journal,
    /// its record is appended now and made durable, before anything is served.
    func settlePendingChange(of store: FileStore, rebuilt: Bool) {
        let last = recovered.lastNamespaceChange[store.exportID]
        let records = store.settlePendingChange(lastRecorded: last, rebuilt: rebuilt)
        guard !records.isEmpty else { return }
        for r in records { writer.append(exportID: store.exportID, r) }
        do {
            try writer.waitDurable(writer.lastAppended)
        } catch {
            logger.error("journal not durable at start; it is retried while serving", metadata: ["journal.error": "\(error)"])
        }
    }

    func markRunning(exportID: UInt64) {
        try? FileManager.default.createDirectory(atPath: "/run/swiftnfs", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: Self.markerPath(exportID: exportID), contents: nil)
    }

    func markStopped(exportID: UInt64) {
        try? FileManager.default.removeItem(atPath: Self.markerPath(exportID: exportID))
    }

    /// The server is stopping: a checkpoint running in the background stops soon (`finish`
    /// does the last one, within the time left).
    func stopBackgroundWork() {
        // Nothing waits for room that no checkpoint will make any more.
        writer.drain()
        checkpointer.interrupt()
    }

    /// The background work until shutdown, on two threads of its own (never the pools that
    /// answer clients, which back-pressure may fill): UNSTABLE data reaches the journal's
    /// stable storage within the flush interval (and a failed journal is retried as often),
    /// and checkpoints run every interval, or back to back while the journal holds more than a
    /// quarter of its limit, so that a sustained write rate is checkpointed as it comes.
    func run() async {
        let threads = NIOThreadPool(numberOfThreads: 2)
        threads.start()
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await self.flushLoop(threads) }
            tasks.addTask { await self.checkpointLoop(threads) }
        }
        try? await threads.shutdownGracefully()
    }

    private func flushLoop(_ threads: NIOThreadPool) async {
        let (writer, writeBack, logger, clock) = (self.writer, self.writeBack, self.logger, settings.clock)
        let interval = min(settings.flushInterval, settings.writeBack.delay > .zero ? settings.writeBack.delay : settings.flushInterval)
        while !Task.isCancelled {
            try? await clock.sleep(for: interval)
            _ = try? await threads.runIfActive {
                do {
                    try writeBack(false)
                } catch {
                    logger.debug("UNSTABLE data not copied into the journal yet", metadata: ["journal.error": "\(error)"])
                }
                try writer.waitDurable(writer.lastAppended)
            }
            publishStatus()
        }
    }

    private func checkpointLoop(_ threads: NIOThreadPool) async {
        let (writer, interval, quarter, clock) = (self.writer, settings.checkpointInterval, settings.limits.maxUncheckpointedBytes / 4,
                                                  settings.clock)
        // A checkpoint at every interval, and as soon as appends take the journal past a
        // quarter of its limit; then back to back while it stays past it.
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // A journal recovered past that quarter at start crossed it before this loop listened.
        if writer.status.uncheckpointedBytes > quarter { wake.yield() }
        await withTaskGroup(of: Void.self) { producers in
            producers.addTask {
                while !Task.isCancelled {
                    try? await clock.sleep(for: interval)
                    wake.yield()
                }
            }
            producers.addTask { for await _ in writer.pressure { wake.yield() } }
            for await _ in wakeups {
                repeat {
                    await checkpoint(threads)
                } while !Task.isCancelled && writer.status.uncheckpointedBytes > quarter
                if Task.isCancelled { break }
            }
            producers.cancelAll()
        }
    }

    private func checkpoint(_ threads: NIOThreadPool) async {
        let started = ContinuousClock.now
        do {
            let report = try await threads.runIfActive { [checkpointer] in try checkpointer.checkpoint() }
            if report.held {
                // A full copy for a standby holds checkpoints: not again at once (the loop runs
                // back to back while the journal is past a quarter of its limit).
                try? await Task.sleep(for: .milliseconds(500))
            }
            if report.records > 0 {
                Metrics.Timer(label: "journal_checkpoint_duration_seconds", dimensions: [("directory", settings.directory)])
                    .record(duration: ContinuousClock.now - started)
                logger.info("checkpoint", metadata: [
                    "journal.records": "\(report.records)", "journal.bytes": "\(report.bytes)",
                    "journal.seconds": "\(ContinuousClock.now - started)",
                ])
            }
        } catch {
            logger.error("checkpoint failed; the journal keeps everything until one succeeds", metadata: ["journal.error": "\(error)"])
            // Not again at once: a full copy disk stays full for a while.
            try? await Task.sleep(for: .seconds(1))
        }
        publishStatus()
    }

    /// Writes DIR/status for `swiftnfsd status`. Degraded: the journal cannot be made durable,
    /// or the last checkpoint failed.
    /// Why the journal is degraded, if it is: it cannot be made durable, or the last
    /// checkpoint failed.
    static func degraded(_ s: JournalWriter.Status, checkpointError: String?) -> String? {
        s.failure.map { "journal: \($0)" } ?? checkpointError.map { "checkpoint: \($0)" }
    }

    @discardableResult
    func publishStatus() -> JournalStatus {
        let s = writer.status
        let (time, checkpointError) = checkpointer.lastResult
        let degraded = Self.degraded(s, checkpointError: checkpointError)
        var status = JournalStatus(
            pid: getpid(), updated: Int64(Date().timeIntervalSince1970), appendedSequence: s.appendedSequence,
            durableSequence: s.durableSequence, checkpointedSequence: directory.checkpointedSequence(),
            uncheckpointedBytes: s.uncheckpointedBytes, lastCheckpoint: Int64(time), degraded: degraded)
        status.limitBytes = settings.limits.maxUncheckpointedBytes
        status.unsyncedBytes = s.unsyncedBytes
        status.heldBack = s.waitingForRoom
        status.control = settings.controlSocket
        statusFile.write(status)
        return status
    }

    /// A checkpoint now (`swiftnfsd checkpoint`), of everything written so far (UNSTABLE data
    /// waiting in the served files included). Returns the line the command prints.
    func checkpointNow() async -> String {
        let threads = NIOThreadPool(numberOfThreads: 1)
        threads.start()
        defer { publishStatus() }
        do {
            let report = try await threads.runIfActive { [checkpointer, writer, writeBack] in
                try writeBack(true)
                try writer.waitDurable(writer.lastAppended)
                return try checkpointer.checkpoint()
            }
            try? await threads.shutdownGracefully()
            if report.held {
                return "not now: a full copy is being sent to a standby (the copy stays at record \(report.appliedThrough) until it is sent)"
            }
            logger.notice("checkpoint done on request")
            return "checkpointed through record \(report.appliedThrough)"
        } catch {
            try? await threads.shutdownGracefully()
            logger.error("checkpoint failed", metadata: ["journal.error": "\(error)"])
            return "error: checkpoint of \(settings.directory) failed: \(error)"
        }
    }

    /// At shutdown: no more changes, everything to the journal, and a last checkpoint for as
    /// long as `deadline` (CLOCK_MONOTONIC seconds) allows. Returns whether the copy is up
    /// to date with the journal; if not, the next start goes on where this one stopped.
    func finish(deadline: Double) -> Bool {
        // UNSTABLE data still waiting goes into the journal first (past its limit if need be:
        // no checkpoint makes room any more before the last one).
        writer.drain()
        do {
            try writeBack(true)
        } catch {
            logger.error("UNSTABLE data not copied into the journal at the stop; clients send it again after the restart",
                         metadata: ["journal.error": "\(error)"])
        }
        writer.stop()
        checkpointer.resume()
        do {
            try writer.waitDurable(writer.lastAppended)
            let report = try checkpointer.checkpoint(deadline: deadline)
            if report.stoppedEarly {
                logger.notice("stopping before the copy is up to date; the next start goes on with the checkpoint", metadata: [
                    "journal.uncheckpointed_bytes": "\(writer.status.uncheckpointedBytes)",
                ])
                return false
            }
            return true
        } catch {
            logger.error("final checkpoint failed; the journal will be replayed at the next start", metadata: ["journal.error": "\(error)"])
            return false
        }
    }
}
