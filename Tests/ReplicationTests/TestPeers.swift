import Journal
import NIOCore
import NIOPosix
import Replication
import Synchronization

// Peers of the replication link that the tests play themselves.

extension ByteBuffer {
    static func message(_ m: ReplicationMessage) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeReplicationMessage(m)
        return b
    }
}

/// An active that sends a standby fixed messages after its HELLO, then waits (or, with
/// `thenClose`, closes the link).
struct FakeActive {
    let port: Int
    let task: Task<Void, Error>

    static func start(sending messages: [ReplicationMessage], thenClose: Bool = false) async throws -> FakeActive {
        let listener = try await ReplicationSource.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        let port = listener.channel.localAddress?.port ?? 0
        let task = Task {
            try await listener.executeThenClose { connections in
                for try await connection in connections {
                    try await connection.executeThenClose { inbound, outbound in
                        var received = inbound.makeAsyncIterator()
                        _ = try await received.next()
                        try await outbound.write(contentsOf: messages)
                        while !thenClose, try await received.next() != nil {}
                    }
                    return
                }
            }
        }
        return FakeActive(port: port, task: task)
    }

    func stop() { task.cancel() }

    /// A standby on `directory` (empty, or where a journal left it) follows this active once:
    /// the error that ended the link (nil: it ended without one), and its last record then.
    func followed(by directory: JournalDirectory) async throws -> (error: ReplicationError?, last: UInt64) {
        let summary = JournalLog.summary(directory, after: directory.checkpointedSequence())
        let writer = try JournalWriter(directory: directory, lastSequence: summary.lastSequence,
                                       uncheckpointedBytes: summary.bytesAfterCheckpoint, logger: ReplicationLinkTests.logger)
        defer { writer.stop() }
        let endpoint = ReplicationFollower.Endpoint(host: "127.0.0.1", port: port)
        let follower = ReplicationFollower(writer: writer, name: "s", logger: ReplicationLinkTests.logger, source: { endpoint })
        do {
            try await follower.follow(endpoint)
            return (nil, writer.lastAppended)
        } catch let error as ReplicationError {
            return (error, writer.lastAppended)
        }
    }
}

/// Between a standby and an active: passes the messages both ways, and cuts both connections
/// once `cutAfterData` FULL_COPY_DATA messages have gone through (a standby stopped during a copy).
final class Relay: Sendable {
    let port: Int
    let cut = Atomic<Bool>(false)
    private let task = Mutex<Task<Void, Error>?>(nil)

    private init(port: Int) { self.port = port }

    static func start(to activePort: Int, cutAfterData: Int) async throws -> Relay {
        let listener = try await ReplicationSource.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        let relay = Relay(port: listener.channel.localAddress?.port ?? 0)
        let task = Task {
            try await listener.executeThenClose { connections in
                for try await standby in connections {
                    let active = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .connect(host: "127.0.0.1", port: activePort) { ch in ch.eventLoop.makeCompletedFuture { try ch.replicationAsyncChannel() } }
                    try? await standby.executeThenClose { fromStandby, toStandby in
                        try await active.executeThenClose { fromActive, toActive in
                            try await withThrowingTaskGroup(of: Void.self) { tasks in
                                tasks.addTask { for try await m in fromStandby { try await toActive.write(m) } }
                                tasks.addTask {
                                    var data = 0
                                    for try await m in fromActive {
                                        try await toStandby.write(m)
                                        if case .fullCopyData = m { data += 1 }
                                        if data >= cutAfterData { break }
                                    }
                                }
                                _ = try await tasks.next()
                                tasks.cancelAll()
                            }
                        }
                    }
                    relay.cut.store(true, ordering: .releasing)
                    return
                }
            }
        }
        relay.task.withLock { $0 = task }
        return relay
    }

    func stop() { task.withLock { $0?.cancel() } }
}
