import FileStore
import Foundation
import Journal
import Logging
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import Replication
import SwiftNFSTesting
import Synchronization
import Testing

/// An active and a standby over real sockets, with real journals in temporary directories: an
/// in-process server written to through NFS, or a bare journal writer with its listener; the
/// standby is a `ReplicationFollower` on a journal of its own.
@Suite struct ReplicationLinkTests {
    static var logger: Logger {
        var l = Logger(label: "replication-test")
        l.logLevel = ProcessInfo.processInfo.environment["SWIFTNFS_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return l
    }

    static func scratch(_ what: String) -> JournalDirectory {
        JournalDirectory(root: NSTemporaryDirectory() + "swiftnfs-\(what)-\(UUID().uuidString)")
    }

    static func eventually(_ what: String, _ timeout: Duration = .seconds(15), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(try await condition()) {
            guard ContinuousClock.now < deadline else { throw ToolFailure(message: "not within \(timeout): \(what)", result: nil) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A standby: a journal writer on its own directory (reopened where an earlier one stopped,
    /// after settling a full copy that run left, as a server's start does), with a checkpointer
    /// (held while a full copy is swapped in), and a follower of `port` running until `body` returns.
    static func withStandby<T>(_ directory: JournalDirectory, following port: Int, name: String = "standby",
                               _ body: (ReplicationFollower, JournalWriter) async throws -> T) async throws -> T {
        try JournalDirectory.makeDirectories(directory.root)
        _ = try directory.settleFullCopy()
        let summary = JournalLog.summary(directory, after: directory.checkpointedSequence())
        let writer = try JournalWriter(directory: directory, lastSequence: summary.lastSequence,
                                       uncheckpointedBytes: summary.bytesAfterCheckpoint, logger: logger)
        defer { writer.stop() }
        let checkpointer = Checkpointer(directory: directory, writer: writer, logger: logger, syncServed: {})
        let follower = ReplicationFollower(writer: writer, name: name, retryInterval: .milliseconds(100), logger: logger,
                                           source: { .init(host: "127.0.0.1", port: port) }, checkpointer: checkpointer)
        let running = Task { await follower.run() }
        defer { running.cancel() }
        let result = try await body(follower, writer)
        running.cancel()
        await running.value
        return result
    }

    /// Every frame a journal holds, as bytes, by sequence.
    static func frames(_ directory: JournalDirectory) throws -> [UInt64: [UInt8]] {
        let last = JournalLog.summary(directory, after: 0).lastSequence
        let oldest = directory.segments().first?.first ?? 1
        guard last >= oldest else { return [:] }
        let cursor = try JournalFrameCursor(directory: directory, after: oldest - 1, through: last)
        var out: [UInt64: [UInt8]] = [:]
        while !cursor.isDone {
            for f in try cursor.nextBatch() { out[f.sequence] = Array(f.frame.readableBytesView) }
        }
        return out
    }

    static func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func writesThroughNFSReachTheStandbyByteForByteAndItsCopyAfterACheckpoint() async throws {
        var options = TestServerOptions()
        options.durable = true
        options.replicationPort = 0
        try await withTestServer(options) { server, client, root in
            let active = JournalDirectory(root: try #require(server.durableDirectory))
            let port = try #require(server.replicationPort)
            let data1 = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
            let f = try #require(try await client.create(root, Self.name("early")).object)
            _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: data1), stable: .fileSync)

            let standby = Self.scratch("standby")
            defer { try? FileManager.default.removeItem(atPath: standby.root) }
            // A standby that connects after the first writes catches up from the segments, then follows.
            let acknowledged = try await Self.withStandby(standby, following: port) { follower, writer in
                let before = try Self.frames(active).keys.max() ?? 0
                try await Self.eventually("caught up and in sync") { follower.status.inSync && follower.status.acknowledged >= before }
                let d = try #require(try await client.mkdir(root, Self.name("dir")).object)
                let g = try #require(try await client.create(d, Self.name("live")).object)
                _ = try await client.write(g, offset: 0, data: ByteBuffer(bytes: [UInt8](repeating: 0xab, count: 70_000)), stable: .fileSync)
                _ = try await client.write(f, offset: 50_000, data: ByteBuffer(bytes: [1, 2, 3]), stable: .fileSync)
                let last = try #require(try Self.frames(active).keys.max())
                try await Self.eventually("live writes acknowledged") { follower.status.acknowledged >= last }
                #expect(writer.status.durableSequence >= last)
                return follower.status.acknowledged
            }
            // The standby's journal holds the active's frames, byte for byte, under the same sequences.
            let theirs = try Self.frames(active), ours = try Self.frames(standby)
            #expect(!ours.isEmpty)
            #expect(ours == theirs.filter { $0.key <= acknowledged })

            // A checkpoint on the standby applies them to its copy: the files as the active serves them.
            let report = try Checkpointer.checkpoint(directory: standby, through: acknowledged, syncServed: {}, rotate: {})
            #expect(report.appliedThrough == acknowledged)
            let copies = try FileManager.default.contentsOfDirectory(atPath: standby.root + "/copy")
            let copy = standby.root + "/copy/" + (try #require(copies.first))
            for path in ["early", "dir/live"] {
                let served = try Data(contentsOf: URL(fileURLWithPath: server.path(path)))
                let replicated = try Data(contentsOf: URL(fileURLWithPath: copy + "/" + path))
                #expect(served == replicated, "\(path)")
            }
        }
    }

    @Test func aStandbyThatWasAwayCatchesUpFromItsLastRecord() async throws {
        let active = Self.scratch("active"), standby = Self.scratch("standby")
        defer { for d in [active, standby] { try? FileManager.default.removeItem(atPath: d.root) } }
        try await Self.withSource(active) { writer, source, port in
            for n in 0..<20 { writer.append(exportID: 1, Self.write(n)) }
            let first = try await Self.withStandby(standby, following: port) { follower, _ in
                try await Self.eventually("caught up") { follower.status.acknowledged == writer.lastAppended }
                // The active hears the last acknowledgement a moment later.
                try await Self.eventually("in sync on the active, nothing lacking") {
                    source.status.first?.inSync == true && source.status.first?.lagBytes == 0
                }
                #expect(source.status.first?.acknowledged == writer.lastAppended)
                #expect(source.status.first?.name == "standby")
                return follower.status.acknowledged
            }
            // Stopped: the active no longer counts it.
            try await Self.eventually("gone from the active") { source.status.isEmpty }
            for n in 20..<50 { writer.append(exportID: 1, Self.write(n)) }
            // Back: it asks from its last record, and gets only what it lacks.
            try await Self.withStandby(standby, following: port) { follower, _ in
                try await Self.eventually("caught up again") { follower.status.acknowledged == writer.lastAppended }
                #expect(follower.status.framesReceived == Int(writer.lastAppended - first))
            }
            #expect(try Self.frames(standby) == Self.frames(active))
        }
    }

    @Test func aNodeThatIsNotTheActiveRefusesFollowersAndDropsThemWhenItStepsDown() async throws {
        let active = Self.scratch("active"), standby = Self.scratch("standby")
        defer { for d in [active, standby] { try? FileManager.default.removeItem(atPath: d.root) } }
        let leads = Mutex(true)
        try await Self.withSource(active, mayServe: { leads.withLock { $0 } }) { writer, source, port in
            writer.append(exportID: 1, Self.write(0))
            try await Self.withStandby(standby, following: port) { follower, _ in
                try await Self.eventually("following") { follower.status.acknowledged == 1 && source.status.count == 1 }
                // Steps down: the standby is let go, and refused when it comes back.
                leads.withLock { $0 = false }
                try await Self.eventually("let go") { source.status.isEmpty }
                try await Self.eventually("refused") { follower.status.lastError?.contains("not the active") == true }
                #expect(!follower.status.connected)
            }
        }
    }

    @Test func synchronousAnswersWaitForTheStandbyAndNotLongerThanTheWaitOnceItIsSilent() async throws {
        let active = Self.scratch("active"), standby = Self.scratch("standby")
        defer { for d in [active, standby] { try? FileManager.default.removeItem(atPath: d.root) } }
        var limits = JournalWriter.Limits()
        // Well above an fsync on a loaded machine's disk (0.2 to 0.7 s seen with other suites
        // writing beside it), which each answer waits for on both sides.
        limits.replicaWait = 2
        // A silent standby is dropped by the wait, not first by the acknowledgement window.
        var settings = ReplicationSource.Settings()
        settings.policy.ackWindow = .seconds(4)
        try await Self.withSource(active, limits: limits, settings: settings) { writer, source, port in
            writer.append(exportID: 1, Self.write(0))
            try await Self.withStandby(standby, following: port) { follower, standbyWriter in
                try await Self.eventually("in sync") { source.status.first?.inSync == true && writer.status.replicaAcknowledged != nil }
                // Once a record is answered as durable, the standby has it on stable storage.
                for n in 1...20 {
                    let sequence = writer.append(exportID: 1, Self.write(n))
                    try await NIOThreadPool.singleton.runIfActive { try writer.waitDurable(sequence) }
                    #expect(standbyWriter.status.durableSequence >= sequence)
                }
                #expect(writer.status.replicaFallbacks == 0)
            }
            // The standby gone: answers wait for this journal alone.
            try await Self.eventually("no standby") { source.status.isEmpty && writer.status.replicaAcknowledged == nil }

            // A standby that stops acknowledging (a frozen process) holds answers back for the wait at most.
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port) { ch in ch.eventLoop.makeCompletedFuture { try ch.replicationAsyncChannel() } }
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(.hello(name: "frozen", after: writer.lastAppended))
                var messages = inbound.makeAsyncIterator()
                while let message = try await messages.next() {
                    guard case .position = message else { continue }
                    try await outbound.write(.ack(durable: writer.lastAppended))
                    if writer.status.replicaAcknowledged != nil { break }
                }
                #expect(writer.status.replicaAcknowledged != nil)
                let started = ContinuousClock.now
                let sequence = writer.append(exportID: 1, Self.write(99))
                try await NIOThreadPool.singleton.runIfActive { try writer.waitDurable(sequence) }
                let waited = ContinuousClock.now - started
                #expect(waited >= .milliseconds(1900) && waited < .seconds(5), "\(waited)")
                #expect(writer.status.replicaFallbacks == 1)
                // Dropped until it acknowledges everything: not in sync, answers not held back.
                try await Self.eventually("not in sync") { source.status.first?.inSync == false }
                let next = writer.append(exportID: 1, Self.write(100))
                let quick = ContinuousClock.now
                try await NIOThreadPool.singleton.runIfActive { try writer.waitDurable(next) }
                // Less than the wait: its own fsync alone, however slow the disk.
                #expect(ContinuousClock.now - quick < .milliseconds(1900))
            }
        }
    }

    @Test func aStandbyThatStopsAcknowledgingIsNotInSync() async throws {
        let active = Self.scratch("active")
        defer { try? FileManager.default.removeItem(atPath: active.root) }
        var settings = ReplicationSource.Settings()
        settings.policy.ackWindow = .milliseconds(500)
        try await Self.withSource(active, settings: settings) { writer, source, port in
            writer.append(exportID: 1, Self.write(0))
            // A standby that says hello, acknowledges once, then says nothing more (a frozen process).
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port) { ch in ch.eventLoop.makeCompletedFuture { try ch.replicationAsyncChannel() } }
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(.hello(name: "frozen", after: 0))
                var messages = inbound.makeAsyncIterator()
                // The first frame (a POSITION may come before it).
                while true {
                    guard let message = try await messages.next() else { throw ToolFailure(message: "no frame", result: nil) }
                    if case .frame = message { break }
                }
                try await outbound.write(.ack(durable: 1))
                try await Self.eventually("in sync") { source.status.first?.inSync == true }
                try await Self.eventually("not in sync once it is silent", .seconds(5)) { source.status.first?.inSync == false }
                #expect(source.status.first?.name == "frozen")
            }
        }
    }

    @Test func aStandbyBehindACheckpointIsToldItNeedsAFullCopy() async throws {
        let active = Self.scratch("active"), standby = Self.scratch("standby")
        defer { for d in [active, standby] { try? FileManager.default.removeItem(atPath: d.root) } }
        var limits = JournalWriter.Limits()
        limits.segmentSize = 64 << 10
        try await Self.withSource(active, limits: limits) { writer, _, port in
            for n in 0..<20 { writer.append(exportID: 1, Self.write(n)) }
            try writer.waitDurable(writer.lastAppended)
            // The copy takes them and the segments they were in are deleted.
            let report = try Checkpointer.checkpoint(directory: active, through: writer.lastAppended, syncServed: {}, rotate: { writer.rotate() })
            #expect(report.appliedThrough == writer.lastAppended)
            writer.append(exportID: 1, Self.write(20))
            #expect((active.segments().first?.first ?? 0) > 1)
            try await Self.withStandby(standby, following: port) { follower, _ in
                try await Self.eventually("told") { follower.status.fullCopyNeeded && follower.status.lastError != nil }
                #expect(follower.status.lastError?.contains("full copy is needed") == true, "\(follower.status)")
                #expect(follower.status.appended == 0)
            }
            #expect(try Self.frames(standby).isEmpty)
        }
    }

    /// A node deposed at epoch 3 that appended a record of its own afterwards (a call under
    /// way at its step-down) shares the new active's sequence 3 but not its epoch (4): it is
    /// told it needs a full copy, and appends nothing, rather than taking record 4 onto a
    /// record 3 the active never had. A standby whose last record the active has follows on.
    @Test func aStandbyWhoseLastRecordIsOfAnotherEpochIsToldItNeedsAFullCopy() async throws {
        let active = Self.scratch("active"), deposed = Self.scratch("deposed"), behind = Self.scratch("behind")
        defer { for d in [active, deposed, behind] { try? FileManager.default.removeItem(atPath: d.root) } }
        // Records 1 and 2 of epoch 3 on all three journals; record 3 of epoch 3 on the deposed one.
        for (directory, count) in [(deposed, 3), (behind, 2)] {
            let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, logger: Self.logger)
            writer.epoch.store(3, ordering: .relaxed)
            for n in 0..<count { writer.append(exportID: 1, Self.write(n)) }
            try writer.waitDurable(writer.lastAppended)
            writer.stop()
        }
        #expect(JournalFrameCursor.epoch(of: 3, in: deposed) == 3)
        try await Self.withSource(active) { writer, _, port in
            writer.epoch.store(3, ordering: .relaxed)
            for n in 0..<2 { writer.append(exportID: 1, Self.write(n)) }
            writer.epoch.store(4, ordering: .relaxed)
            for n in 10..<12 { writer.append(exportID: 1, Self.write(n)) }
            try writer.waitDurable(writer.lastAppended)
            #expect(JournalFrameCursor.epoch(of: 3, in: active) == 4)
            try await Self.withStandby(deposed, following: port) { follower, standbyWriter in
                try await Self.eventually("told") { follower.status.fullCopyNeeded && follower.status.lastError != nil }
                #expect(follower.status.lastError?.contains("another history") == true, "\(follower.status)")
                #expect(standbyWriter.lastAppended == 3)
            }
            try await Self.withStandby(behind, following: port) { follower, standbyWriter in
                try await Self.eventually("followed") { follower.status.acknowledged == 4 }
                #expect(!follower.status.fullCopyNeeded)
            }
            #expect(try Self.frames(behind) == Self.frames(active))
        }
    }

    @Test func aCorruptedFrameIsRefusedAndTheConnectionDropped() async throws {
        let standby = Self.scratch("standby")
        defer { try? FileManager.default.removeItem(atPath: standby.root) }
        let good = JournalFormat.frame(JournalRecord(sequence: 1, exportID: 1, epoch: 0, change: Self.write(0)))
        var bad = JournalFormat.frame(JournalRecord(sequence: 2, exportID: 1, epoch: 0, change: Self.write(1)))
        bad.setInteger(bad.getInteger(at: 100, as: UInt8.self)! ^ 1, at: 100)
        // A fake active that sends a good frame, then a corrupted one.
        let fake = try await FakeActive.start(sending: [.frame(good), .frame(bad), .frame(good)])
        defer { fake.stop() }
        let (error, last) = try await fake.followed(by: standby)
        #expect(error?.code == .badFrame, "\(String(describing: error))")
        #expect(error?.detail.contains("checksum") == true, "\(String(describing: error))")
        #expect(last == 1)
        #expect(try Self.frames(standby).keys.sorted() == [1])
    }

    static func write(_ n: Int, bytes: Int = 4096) -> FileChange {
        .write(fileID: 7, path: Array("f".utf8), offset: UInt64(n * bytes), data: [UInt8](repeating: UInt8(n & 0xff), count: bytes))
    }

    /// An active without a server: a journal writer on `directory` and its replication listener.
    static func withSource<T>(_ directory: JournalDirectory, limits: JournalWriter.Limits = JournalWriter.Limits(),
                              settings: ReplicationSource.Settings = ReplicationSource.Settings(),
                              mayServe: @escaping @Sendable () -> Bool = { true },
                              _ body: (JournalWriter, ReplicationSource, Int) async throws -> T) async throws -> T {
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits, logger: logger)
        defer { writer.stop() }
        let source = ReplicationSource(writer: writer, directory: directory, settings: settings, logger: logger, mayServe: mayServe)
        let listener = try await ReplicationSource.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        let port = listener.channel.localAddress?.port ?? 0
        let serving = Task { await source.serve(listener) }
        defer { serving.cancel() }
        let result = try await body(writer, source, port)
        serving.cancel()
        await serving.value
        return result
    }
}
