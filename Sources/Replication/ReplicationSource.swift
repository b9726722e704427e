import Journal
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The active's side of replication: a listener that standbys connect to, and for each one
/// the journal's frames after the sequence it asks for: first from the segments on disk (a
/// standby that was away catches up), then live as they are appended (`JournalFollower`),
/// byte for byte. Each standby's acknowledgements make its `StandbyProgress`; it is told what
/// the active makes of it (`POSITION`) a few times a second, and answers each with an ACK.
///
/// When the journal no longer reaches back to what a standby lacks (a checkpoint deleted those
/// segments), or the standby holds records past this journal or of another epoch (another
/// history), it is sent a full copy of the durable directory's checkpoint (see
/// `sendFullCopy`), then the frames after it as to any standby. A standby of protocol
/// version 2 (or a source without a checkpointer) is told `FULL_COPY_NEEDED` instead, and the
/// connection ends.
package final class ReplicationSource: Sendable {
    package struct Settings: Sendable {
        package var policy = StandbyProgress.Policy()
        /// How often a standby is sent its position (and so answers with an ACK).
        package var positionInterval: Duration = .milliseconds(250)
        /// The live frames held for a standby that does not keep up, before it is sent back
        /// to the segments for them.
        package var maxQueuedBytes = 64 << 20
        /// Bytes read from the segments at a time during a catch-up.
        package var batchBytes = 4 << 20
        /// Synchronous replication: while a standby is in sync, the journal answers callers
        /// (COMMIT, FILE_SYNC, changes on a `sync` export) only once it has acknowledged their
        /// records too, or once they have waited `JournalWriter.Limits.replicaWait` for it
        /// (then it is dropped until it has acknowledged everything again).
        package var synchronous = true
        package init() {}
    }

    package typealias Connection = NIOAsyncChannel<ReplicationMessage, ReplicationMessage>
    package typealias Listener = NIOAsyncChannel<Connection, Never>

    let writer: JournalWriter
    let directory: JournalDirectory
    /// Held still while a full copy is read (nil: no full copy is sent).
    let checkpointer: Checkpointer?
    package let settings: Settings
    let logger: Logger
    /// Whether standbys may follow this node now (a cluster node: while it is the active).
    let mayServe: @Sendable () -> Bool
    let standbys = Mutex<[Int: (progress: StandbyProgress, follower: JournalFollower?)]>([:])
    private let nextID = Atomic<Int>(0)
    /// Full copies sent since the start.
    package let fullCopiesSent = Atomic<Int>(0)
    /// Synchronous replication: which standby the journal waits for (`updateReplica`).
    private let replica = Mutex(ReplicaChoice())

    struct ReplicaChoice {
        /// The journal's count of fallbacks when last looked at.
        var fallbacksSeen = 0
        /// The only standby the journal may wait for (nil: any in sync, the one furthest ahead).
        var pinned: String?
        /// The standby whose acknowledgements the journal was last told of (nil: none).
        var waitedFor: String?
    }

    package init(writer: JournalWriter, directory: JournalDirectory, checkpointer: Checkpointer? = nil, settings: Settings = Settings(),
                 logger: Logger, mayServe: @escaping @Sendable () -> Bool = { true }) {
        self.writer = writer
        self.directory = directory
        self.checkpointer = checkpointer
        self.settings = settings
        self.logger = logger
        self.mayServe = mayServe
    }

    /// Listens on `host:port` (0: a port the kernel picks; see `localAddress`).
    package static func bind(host: String, port: Int, group: EventLoopGroup) async throws -> Listener {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try channel.replicationAsyncChannel() }
            }
    }

    /// Serves standbys on `listener` until the task is cancelled (then the listener closes).
    package func serve(_ listener: Listener) async {
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { sessions in
                try? await listener.executeThenClose { inbound in
                    for try await connection in inbound {
                        sessions.addTask { await self.session(connection) }
                    }
                }
            }
        } onCancel: {
            listener.channel.close(promise: nil)
        }
    }

    /// The standbys connected now.
    package var status: [StandbyStatus] {
        let now = ContinuousClock.now
        return standbys.withLock { all in
            all.values.map { s in
                let queued = s.follower?.queuedBytes ?? 0
                return StandbyStatus(name: s.progress.name, acknowledged: s.progress.acknowledged, lagBytes: s.progress.lagBytes(queued: queued),
                                     inSync: s.progress.inSync(at: now, queued: queued), caughtUp: s.progress.caughtUp,
                                     copying: s.progress.copying)
            }.sorted { $0.name < $1.name }
        }
    }

    private func session(_ connection: Connection) async {
        let peer = "\(connection.channel.remoteAddress.map { "\($0)" } ?? "?")"
        let id = nextID.add(1, ordering: .relaxed).newValue
        defer {
            standbys.withLock { _ = $0.removeValue(forKey: id) }
            updateReplica()
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var messages = inbound.makeAsyncIterator()
                guard case .hello(let name, let after, let epoch, let version)? = try await messages.next() else {
                    try await outbound.write(.refused("the first message must be HELLO"))
                    return
                }
                guard mayServe() else {
                    try await outbound.write(.refused("this node is not the active"))
                    return
                }
                logger.notice("replication.standby connected", metadata: [
                    "replication.standby": "\(name)", "replication.peer": "\(peer)", "replication.after": "\(after)",
                ])
                standbys.withLock { $0[id] = (StandbyProgress(name: name, after: after, policy: settings.policy), nil) }
                await withTaskGroup(of: Void.self) { tasks in
                    tasks.addTask {
                        await self.send(after: after, epoch: epoch, version: version, id: id, name: name, outbound, channel: connection.channel)
                    }
                    tasks.addTask { await self.tellPositions(id: id, outbound, channel: connection.channel) }
                    do {
                        while let message = try await messages.next() {
                            let now = ContinuousClock.now
                            switch message {
                            case .ack(let durable):
                                standbys.withLock { $0[id]?.progress.acknowledged(durable, at: now) }
                            case .fullCopyDone(let sequence):
                                standbys.withLock { $0[id]?.progress.fullCopyInstalled(sequence) }
                                logger.notice("replication.full_copy installed by the standby", metadata: [
                                    "replication.standby": "\(name)", "replication.sequence": "\(sequence)",
                                ])
                            default:
                                throw ReplicationError(.protocolViolation, "a standby sent \(message.kind)")
                            }
                            updateReplica()
                        }
                    } catch {
                        logger.error("replication.standby dropped", metadata: ["replication.standby": "\(name)", "replication.error": "\(error)"])
                    }
                    tasks.cancelAll()
                }
                logger.notice("replication.standby disconnected", metadata: ["replication.standby": "\(name)"])
            }
        } catch {
            logger.info("replication.connection ended", metadata: ["replication.peer": "\(peer)", "replication.error": "\(error)"])
        }
    }

    /// Sends the frames after `after`: from the segments, then live; first a full copy when
    /// the standby needs one (and again if the segments it needs go while it catches up).
    /// Ends (closing the connection) when the connection fails, or a standby that cannot take
    /// a full copy needs one.
    private func send(after: UInt64, epoch: UInt64, version: UInt32, id: Int, name: String,
                      _ outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>, channel: Channel) async {
        defer { channel.close(promise: nil) }
        var last = after
        do {
            var reason = try await divergence(after: after, epoch: epoch)
            while !Task.isCancelled {
                var hold: Checkpointer.Hold?
                defer { hold?.release() }
                if let why = reason {
                    guard version >= ReplicationLimits.fullCopyVersion, let checkpointer else {
                        return try await needsFullCopy(name, outbound, reason: why)
                    }
                    (last, hold) = try await sendFullCopy(id: id, name: name, reason: why, checkpointer: checkpointer, outbound)
                }
                do {
                    try await stream(after: &last, id: id, name: name, outbound, releasingOnceCaughtUp: hold)
                    return
                } catch JournalFrameCursor.Failure.gone(let oldest) {
                    reason = "the journal starts at record \(oldest); the standby lacks records from \(last + 1)"
                }
            }
        } catch let failure as JournalFrameCursor.Failure {
            logger.error("replication.source journal unreadable", metadata: ["replication.standby": "\(name)", "replication.error": "\(failure)"])
        } catch {
            logger.info("replication.send ended", metadata: ["replication.standby": "\(name)", "replication.error": "\(error)"])
        }
    }

    /// Why a standby whose last record is `after`, of `epoch`, cannot follow on from it (nil: it can).
    private func divergence(after: UInt64, epoch: UInt64) async throws -> String? {
        let directory = self.directory
        // A standby that holds nothing lacks what the copy holds without a record: the files an
        // export had when it was first served with a durable directory (the seed).
        if after == 0, checkpointer != nil, try await NIOThreadPool.singleton.runIfActive({ FullCopyReader.copiesHoldAnything(directory) }) {
            return "the standby holds nothing, and this node's copy holds files (a seed, or records checkpointed)"
        }
        let appended = writer.lastAppended
        guard after <= appended else {
            return "the standby holds records through \(after), past this journal's last (\(appended)): another history"
        }
        // A record of the same sequence and another epoch: appended by an active after it was
        // deposed (a call under way at its step-down), never this journal's. Not known (0, or
        // checkpointed away here): the histories are taken to agree.
        if epoch != 0, let own = try await NIOThreadPool.singleton.runIfActive({ JournalFrameCursor.epoch(of: after, in: directory) }),
           own != epoch {
            return "the standby's record \(after) is of epoch \(epoch), this journal's of epoch \(own): another history"
        }
        return nil
    }

    /// The frames after `last` (which it advances), from the segments then live, until the
    /// task is cancelled or the connection fails. `hold` (the full copy's) is released once
    /// the segments have been read: the standby needs none of them any more.
    private func stream(after last: inout UInt64, id: Int, name: String, _ outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>,
                        releasingOnceCaughtUp hold: Checkpointer.Hold?) async throws {
        while !Task.isCancelled {
            // Followed from now on; everything before is in the segments.
            let follower = JournalFollower(maxBytes: settings.maxQueuedBytes)
            let through = writer.follow(follower)
            defer {
                writer.unfollow(follower)
                follower.finish()
            }
            standbys.withLock { $0[id]?.follower = follower }
            let cursor = try JournalFrameCursor(directory: directory, after: last, through: through)
            while !cursor.isDone {
                let batch = try await NIOThreadPool.singleton.runIfActive { [batchBytes = settings.batchBytes] in
                    try cursor.nextBatch(maxBytes: batchBytes)
                }
                try await sendFrames(batch, id: id, outbound)
                last = cursor.last
            }
            hold?.release()
            standbys.withLock { $0[id]?.progress.caughtUp(true) }
            logger.info("replication.standby caught up", metadata: ["replication.standby": "\(name)", "replication.sequence": "\(last)"])
            var wakeups = follower.wakeups.makeAsyncIterator()
            while true {
                let batch = follower.take()
                // Dropped while the standby fell behind: back to the segments for them.
                if batch.overflowed { break }
                let frames = batch.frames.filter { $0.sequence > last }
                if let newest = frames.last {
                    try await sendFrames(frames, id: id, outbound)
                    last = newest.sequence
                    continue
                }
                guard await wakeups.next() != nil, !Task.isCancelled else { return }
            }
            standbys.withLock { $0[id]?.progress.caughtUp(false) }
            logger.notice("replication.standby fell behind; catching up from the segments",
                          metadata: ["replication.standby": "\(name)", "replication.sequence": "\(last)"])
        }
    }

    private func sendFrames(_ frames: [(sequence: UInt64, frame: ByteBuffer)], id: Int,
                            _ outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>) async throws {
        guard !frames.isEmpty else { return }
        // Counted as sent before they go: an acknowledgement can come back before `write` returns.
        standbys.withLock { all in
            for f in frames { all[id]?.progress.sent(sequence: f.sequence, bytes: f.frame.readableBytes) }
        }
        try await outbound.write(contentsOf: frames.map { .frame($0.frame) })
    }

    /// A standby that needs a full copy and cannot take one here (protocol version 2, or no checkpointer).
    private func needsFullCopy(_ name: String, _ outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>, reason: String) async throws {
        logger.error("replication.standby needs a full copy and cannot take one (protocol version 2)",
                     metadata: ["replication.standby": "\(name)", "replication.reason": "\(reason)"])
        let oldest = directory.segments().first?.first ?? 0
        try await outbound.write(.fullCopyNeeded(oldest: oldest, appended: writer.lastAppended, reason: reason))
    }

    /// Synchronous replication: tells the journal what the standby it waits for has
    /// acknowledged (nil: none is in sync): the pinned one while it is in sync, else (none
    /// pinned) the one in sync furthest ahead. A standby the journal gave up waiting for is
    /// dropped first.
    package func updateReplica() {
        guard settings.synchronous else { return }
        let fallbacks = writer.status.replicaFallbacks
        let now = ContinuousClock.now
        // One update at a time: the journal is told the choice last made.
        replica.withLock { choice in
            let gaveUp = fallbacks > choice.fallbacksSeen
            choice.fallbacksSeen = fallbacks
            let chosen = standbys.withLock { all -> StandbyProgress? in
                if gaveUp {
                    for id in Array(all.keys) { all[id]?.progress.drop() }
                }
                return all.values.filter { $0.progress.inSync(at: now, queued: $0.follower?.queuedBytes ?? 0) }.map(\.progress)
                    .filter { choice.pinned == nil || $0.name == choice.pinned }
                    .max { $0.acknowledged < $1.acknowledged }
            }
            choice.waitedFor = chosen?.name
            writer.replicate(acknowledged: chosen?.acknowledged)
        }
    }

    /// Makes the journal wait for standby `name` alone (nil: for any in sync): a cluster pins
    /// the standby it names in etcd as holding everything this node answered, so that no
    /// answer rests on another standby's acknowledgement.
    package func pinReplica(_ name: String?) {
        replica.withLock { $0.pinned = name }
        updateReplica()
    }

    /// The standby the journal waits for, if it holds every record callers were told is
    /// durable (those answered before it was waited for too): the one a cluster may name.
    package var replicaHoldingEveryAnswer: String? {
        replica.withLock { $0.waitedFor != nil && writer.replicaHoldsEveryAnswer ? $0.waitedFor : nil }
    }

    /// The standby whose acknowledgements the journal waits for now (nil: none).
    package var waitedFor: String? { replica.withLock { $0.waitedFor } }

    /// Tells the standby, every `positionInterval`, where the journal is and what the active
    /// makes of it (lag, in sync); its ACK answers each. Once this node may no longer be
    /// followed (it stepped down), the connection is closed: the standby looks for the new
    /// active.
    private func tellPositions(id: Int, _ outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>, channel: Channel) async {
        while !Task.isCancelled {
            guard mayServe() else {
                logger.notice("replication.standby dropped: this node is no longer the active")
                channel.close(promise: nil)
                return
            }
            let appended = writer.lastAppended
            let now = ContinuousClock.now
            let position = standbys.withLock { all -> ReplicationMessage? in
                guard let s = all[id] else { return nil }
                let queued = s.follower?.queuedBytes ?? 0
                return .position(appended: appended, lagBytes: s.progress.lagBytes(queued: queued),
                                 inSync: s.progress.inSync(at: now, queued: queued))
            }
            guard let position, (try? await outbound.write(position)) != nil else { return }
            // A standby that went silent is no longer waited for.
            writer.checkReplicaWait()
            updateReplica()
            try? await Task.sleep(for: settings.positionInterval)
        }
    }
}


