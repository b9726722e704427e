import Journal
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The standby's side of replication: connects to the active's replication listener, asks for
/// every record after the last one its own journal holds, checks each frame it receives (length,
/// CRC-32C, a record that decodes, a sequence above the last) and appends it byte for byte, under
/// the active's sequence, to its own journal (`JournalWriter.appendReplicated`); then syncs and
/// acknowledges the highest durable sequence. Its own checkpoints apply the records to its durable
/// copy, so the standby's durable directory is what a restart of it would recover.
///
/// When the active's journal no longer reaches back to what this standby lacks, or this
/// standby's journal is of another history, the active sends a full copy of its checkpoint
/// (`FullCopyStaging` writes it beside the durable state, then it is swapped in and the
/// journal goes on after the copy's sequence: `installFullCopy`).
///
/// A frame that fails its checks is not appended: the reason is logged and the connection
/// dropped (the next one asks again from the last good record). So is a full copy that does
/// not hold together (a path outside the copy, content without its file): nothing of it is
/// installed. The follower reconnects every
/// `retryInterval` while it runs, and whenever `source` names another place.
package final class ReplicationFollower: Sendable {
    package struct Status: Sendable, Hashable {
        package var source: String?
        package var connected = false
        /// The last record appended here, and the last one acknowledged as durable.
        package var appended: UInt64 = 0
        package var acknowledged: UInt64 = 0
        /// What the active made of this standby at its last POSITION.
        package var inSync = false
        package var lagBytes: UInt64 = 0
        package var framesReceived = 0
        /// Why the last connection ended, if it failed.
        package var lastError: String?
        package var fullCopyNeeded = false
        /// The full copy being received, if one is.
        package var fullCopy: FullCopyProgress?
        /// Full copies installed since the start.
        package var fullCopies = 0

        package init() {}

        /// What a cluster node publishes of itself in its member key: in sync only while
        /// connected, and the lag rounded up to 64 KiB (so that a lag that moves by a few
        /// bytes does not rewrite the key at every step of the election). During a full copy,
        /// never in sync, and the lag is at least what the copy still lacks, so `ha status`
        /// shows it shrink.
        package var published: (inSync: Bool, lagBytes: Int64) {
            let unit: UInt64 = 64 << 10
            let lag = fullCopy.map { max(lagBytes, $0.bytes - min($0.bytes, $0.bytesDone)) } ?? lagBytes
            return (connected && inSync && fullCopy == nil, Int64(clamping: (lag + unit - 1) / unit * unit))
        }
    }

    /// How far a full copy has come: what the active announced, and what came of it.
    package struct FullCopyProgress: Sendable, Hashable {
        package var sequence: UInt64
        package var files: UInt64
        package var bytes: UInt64
        package var entriesDone: UInt64 = 0
        package var bytesDone: UInt64 = 0

        package init(sequence: UInt64, files: UInt64, bytes: UInt64, entriesDone: UInt64 = 0, bytesDone: UInt64 = 0) {
            (self.sequence, self.files, self.bytes, self.entriesDone, self.bytesDone) = (sequence, files, bytes, entriesDone, bytesDone)
        }
    }

    package struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        package var host: String
        package var port: Int
        package init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        package var description: String { "\(host):\(port)" }
    }

    let writer: JournalWriter
    let name: String
    let group: EventLoopGroup
    let logger: Logger
    /// Where the active's listener is now; nil while there is none to follow (no leader, or
    /// this node leads).
    let source: @Sendable () -> Endpoint?
    let retryInterval: Duration
    /// Called whenever the status changes (a cluster node publishes lag and in_sync from it).
    let onStatus: @Sendable (Status) -> Void
    /// Called (on a thread that may block) before each frame is appended; a throw appends
    /// nothing. A server notes there that its served trees fall behind its journal.
    let willAppend: @Sendable () throws -> Void
    /// Called with each record right before it is appended, so before any acknowledgement
    /// covers it (a server takes the replies into its duplicate request cache).
    let appending: @Sendable (JournalRecord) -> Void
    /// This node's checkpointer, held while a full copy is swapped in (nil: none runs here).
    let checkpointer: Checkpointer?
    private let state = Mutex(Status())

    package init(writer: JournalWriter, name: String, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                 retryInterval: Duration = .seconds(1), logger: Logger, source: @escaping @Sendable () -> Endpoint?,
                 onStatus: @escaping @Sendable (Status) -> Void = { _ in },
                 willAppend: @escaping @Sendable () throws -> Void = {}, appending: @escaping @Sendable (JournalRecord) -> Void = { _ in },
                 checkpointer: Checkpointer? = nil) {
        self.checkpointer = checkpointer
        self.writer = writer
        self.name = name
        self.group = group
        self.retryInterval = retryInterval
        self.logger = logger
        self.source = source
        self.onStatus = onStatus
        self.willAppend = willAppend
        self.appending = appending
        state.withLock { $0.appended = writer.lastAppended }
    }

    package var status: Status { state.withLock { $0 } }

    func update(_ change: (inout Status) -> Void) {
        let s = state.withLock { s in
            change(&s)
            return s
        }
        onStatus(s)
    }

    /// Follows the active until the task is cancelled.
    package func run() async {
        var lastError: String?
        while !Task.isCancelled {
            if let endpoint = source() {
                do {
                    try await follow(endpoint)
                    lastError = nil
                } catch {
                    // Logged once while it repeats (a standby waiting for a full copy, an active down).
                    if "\(error)" != lastError {
                        logger.error("replication.follow failed", metadata: ["replication.source": "\(endpoint)", "replication.error": "\(error)"])
                    }
                    lastError = "\(error)"
                    update { $0.lastError = "\(error)" }
                }
                update {
                    $0.connected = false
                    $0.inSync = false
                    $0.fullCopy = nil
                }
            }
            try? await Task.sleep(for: retryInterval)
        }
    }

    /// One connection to the active at `endpoint`, until it ends (or `source` names another).
    package func follow(_ endpoint: Endpoint) async throws {
        // Read before connecting: nothing may throw between the connect and `executeThenClose`
        // (a channel dropped unclosed there traps: "NIOAsyncWriter deinited without finish()").
        let (writer, after) = (self.writer, self.writer.lastAppended)
        let epoch = try await NIOThreadPool.singleton.runIfActive { JournalFrameCursor.epoch(of: after, in: writer.directory) ?? 0 }
        let connection = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: endpoint.host, port: endpoint.port) { channel in
                channel.eventLoop.makeCompletedFuture { try channel.replicationAsyncChannel() }
            }
        update {
            $0.source = endpoint.description
            $0.connected = true
            $0.fullCopyNeeded = false
            $0.lastError = nil
            $0.appended = after
        }
        logger.notice("replication.following", metadata: ["replication.source": "\(endpoint)", "replication.after": "\(after)"])
        try await connection.executeThenClose { inbound, outbound in
            try await outbound.write(.hello(name: name, after: after, epoch: epoch))
            var receiving: FullCopyReceiving?
            defer { receiving?.close() }
            // Acknowledgements beside the receiving: each covers everything appended before its
            // fsync, so frames that arrive during one fsync share the next.
            let (due, ack) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await self.acknowledge(due, outbound) }
                defer {
                    ack.finish()
                    tasks.cancelAll()
                }
                var last = after
                var answered = false
                for try await message in inbound {
                    answered = true
                    switch message {
                    case .frame(let frame):
                        // A node that took over meanwhile appends its own records, none of the old active's.
                        guard source() == endpoint else { return }
                        last = try await append(frame, after: last)
                        ack.yield()
                    case .position(_, let lag, let inSync):
                        update {
                            $0.lagBytes = lag
                            $0.inSync = inSync
                        }
                        ack.yield()
                        // The active moved (or this node leads now): this link is over.
                        guard source() == endpoint else { return }
                    case .fullCopyNeeded(let oldest, let appended, let reason):
                        update { $0.fullCopyNeeded = true }
                        throw ReplicationError(.fullCopyNeeded, "the active (journal from \(oldest) to \(appended)) cannot send what this standby lacks after \(last): \(reason); a full copy is needed, and the active cannot send one (protocol version 2)")
                    case .fullCopyBegin(let sequence, let highestFileID, let files, let bytes):
                        guard source() == endpoint else { return }
                        receiving?.close()
                        receiving = nil
                        receiving = try await startFullCopy(sequence: sequence, highestFileID: highestFileID, files: files, bytes: bytes)
                    case .fullCopyEntry, .fullCopyData:
                        guard let receiving else { throw ReplicationError(.protocolViolation, "the active sent \(message.kind) outside a full copy") }
                        try await receive(message, into: receiving)
                    case .fullCopyEnd(let entries):
                        guard let copy = receiving else { throw ReplicationError(.protocolViolation, "the active sent \(message.kind) outside a full copy") }
                        guard source() == endpoint else { return }
                        last = try await installFullCopy(copy, entries: entries)
                        receiving = nil
                        copy.close()
                        try await outbound.write(.fullCopyDone(sequence: last))
                        ack.yield()
                    case .refused(let reason):
                        throw ReplicationError(.refused, reason)
                    case .hello, .ack, .fullCopyDone:
                        throw ReplicationError(.protocolViolation, "the active sent \(message.kind)")
                    }
                }
                // An active tells a standby why it refuses it, and sends a POSITION within a
                // second otherwise: one that closes at once did not take the HELLO.
                if !answered && !Task.isCancelled {
                    throw ReplicationError(.refused, "the active closed the link without an answer (one of an older protocol version than \(ReplicationLimits.version) does: see its log)")
                }
            }
        }
    }

    /// Checks a received frame and appends it; returns its sequence. Throws (nothing appended)
    /// when it fails a check.
    private func append(_ frame: ByteBuffer, after last: UInt64) async throws -> UInt64 {
        let record: JournalRecord
        switch JournalFormat.record(inFrame: frame) {
        case .success(let r): record = r
        case .failure(let damage):
            logger.error("replication.frame refused; connection dropped", metadata: ["replication.after": "\(last)", "replication.damage": "\(damage)"])
            throw ReplicationError(.badFrame, "frame after record \(last): \(damage)")
        }
        guard record.sequence > last else {
            logger.error("replication.frame refused; connection dropped", metadata: ["replication.sequence": "\(record.sequence)", "replication.after": "\(last)"])
            throw ReplicationError(.badFrame, "record \(record.sequence) after record \(last)")
        }
        let (writer, willAppend, appending) = (self.writer, self.willAppend, self.appending)
        do {
            try await NIOThreadPool.singleton.runIfActive {
                try willAppend()
                appending(record)
                try writer.appendReplicated(sequence: record.sequence, frame: frame)
            }
        } catch {
            throw ReplicationError(.journal, "\(error)")
        }
        update {
            $0.appended = record.sequence
            $0.framesReceived += 1
        }
        return record.sequence
    }

    private func acknowledge(_ due: AsyncStream<Void>, _ outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>) async throws {
        let writer = self.writer
        for await _ in due {
            let durable = try await NIOThreadPool.singleton.runIfActive { () throws -> UInt64 in
                try writer.waitDurable(writer.lastAppended)
                return writer.status.durableSequence
            }
            update { $0.acknowledged = durable }
            try await outbound.write(.ack(durable: durable))
        }
    }
}
