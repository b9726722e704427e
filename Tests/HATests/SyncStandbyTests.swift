import Daemon
import FileStore
import Foundation
import Glibc
import HA
import Journal
import Logging
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import Replication
import ServiceLifecycle
import SwiftNFSTesting
import Synchronization
import Testing

/// Patroni's synchronous mode, against a real etcd: an active "a" serving in this process and a
/// standby "b" made of its parts (an election, and a follower on a journal of its own, as in
/// `ReplicationStatusTests`), so that the test can cut b's replication and watch b's election.
/// A standby the active stopped waiting for never takes over (the sync record no longer names
/// it); one in sync does; and the active answers nothing from its own journal alone while etcd
/// does not take the record that no standby holds it.
@Suite struct SyncStandbyTests {
    static func syncRecord(_ etcd: EtcdClient, _ keys: ClusterKeys) async throws -> SyncRecord? {
        try await etcd.get(keys.sync)?.decode(SyncRecord.self)
    }

    static func write(_ client: NFS3Client, _ root: NFS3FileHandle, _ name: String, _ bytes: [UInt8]) async throws {
        let f = try #require(try await client.create(root, Array(name.utf8)).object)
        _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: bytes), stable: .fileSync)
    }

    /// `crashed`: a ends as a SIGKILL ends it for etcd (cut off from etcd, its lease expires
    /// and the leader key with it); else it stops and resigns (it deletes the leader key).
    @Test(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)), arguments: [true, false])
    func aStandbyDroppedFromSynchronousReplicationDoesNotTakeOverAndTheOldActiveDoes(crashed: Bool) async throws {
        try await withCluster("sync-dropped") { etcd, etcdClient, keys in
            let directory = NSTemporaryDirectory() + "swiftnfs-sync-a-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var a = TestServerOptions.clusterNode("a", etcd: etcdClient, keys: keys)
            a.replicationPort = 0
            a.directory = directory
            let acknowledged = [UInt8](repeating: 0x5a, count: 20_000)
            let options = a
            // The first run reaches etcd through a link the test can freeze.
            let etcdLink = try await FreezableLink(to: etcd.clientPort)
            defer { etcdLink.close() }
            a.highAvailability?.etcd = try EtcdClient(endpoints: ["http://127.0.0.1:\(etcdLink.port)"], timeout: .seconds(1))

            let standby = try await withTestServer(a) { server, client, root in
                // b follows a through a link the test can freeze.
                let link = try await FreezableLink(to: try #require(server.replicationPort))
                let standby = try StandbyOfParts(name: "b", etcd: etcdClient, keys: keys, port: link.port)
                try await ServingNodeTests.eventually("a names b its sync standby", .seconds(20)) {
                    (try? await Self.syncRecord(etcdClient, keys)) == SyncRecord(leader: "a", standby: "b")
                }
                try await Self.write(client, root, "before", [1, 2, 3])

                // b stops acknowledging (as a stopped process would): a stable write waits for
                // it until it is out of sync (no acknowledgement for a second) or dropped
                // (`replicaWait`, a second), then until etcd says no standby holds everything.
                link.freeze()
                let started = ContinuousClock.now
                try await Self.write(client, root, "acknowledged", acknowledged)
                #expect(ContinuousClock.now - started >= .milliseconds(500))
                #expect(try await Self.syncRecord(etcdClient, keys) == SyncRecord(leader: "a", standby: nil),
                        "answered before etcd said no standby holds it")
                let status = try await ClusterView.read(from: etcdClient, keys: keys).status
                #expect(status.members.first { $0.name == "b" }?.notEligible?.contains("no sync standby") == true, "\(status.json)")
                link.close()
                if crashed {
                    etcdLink.freeze()
                    try await ServingNodeTests.eventually("a's lease expired", .seconds(15)) {
                        (try? await ClusterView.read(from: etcdClient, keys: keys))?.leader == nil
                    }
                }
                return standby
            }

            // a is gone, and the leader key with it. b may lack "acknowledged": it must not take
            // over, and says why.
            try await ServingNodeTests.eventually("b says it is not eligible", .seconds(10)) {
                standby.election.campaignRefusal()?.contains("no sync standby") == true
            }
            try await Task.sleep(for: .seconds(5))  // more than twice the TTL
            #expect(standby.becameActive == false)
            #expect(try await ClusterView.read(from: etcdClient, keys: keys).leader == nil)

            // a comes back: the record names it, it takes over with what it acknowledged.
            try await withTestServer(options) { _, client, root in
                let f = try await client.lookup(root, Array("acknowledged".utf8)).object
                #expect(try await client.readAll(f) == acknowledged)
                #expect(try await ClusterView.read(from: etcdClient, keys: keys).leader?.name == "a")
            }
            #expect(standby.becameActive == false)
            await standby.stop()
        }
    }

    @Test(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
    func aStandbyDroppedWhileEtcdDoesNotAnswerHoldsTheAnswerBack() async throws {
        try await withCluster("sync-no-etcd") { etcd, etcdClient, keys in
            var a = TestServerOptions.clusterNode("a", etcd: etcdClient, keys: keys)
            a.replicationPort = 0
            // A lease of 5 s: a stays active for more than 2 s after etcd stops, past the
            // second after which b is out of sync.
            a.highAvailability?.ttl = .seconds(5)
            try await withTestServer(a) { server, client, root in
                let link = try await FreezableLink(to: try #require(server.replicationPort))
                let standby = try StandbyOfParts(name: "b", etcd: etcdClient, keys: keys, port: link.port)
                try await ServingNodeTests.eventually("a names b its sync standby", .seconds(20)) {
                    (try? await Self.syncRecord(etcdClient, keys)) == SyncRecord(leader: "a", standby: "b")
                }
                let f = try #require(try await client.create(root, Array("held".utf8)).object)
                // b stops acknowledging and etcd stops answering: b is out of sync within a
                // second, but a cannot record that no standby holds the write, so it never
                // answers it; it fences once its lease is unproven.
                let writer = try await server.client()
                link.freeze()
                etcd.signal(SIGSTOP)
                let answered = Flag()
                let write = Task {
                    _ = try await writer.write(f, offset: 0, data: ByteBuffer(bytes: [1, 2, 3]), stable: .fileSync)
                    answered.set()
                }
                try await ServingNodeTests.eventually("a fenced", .seconds(10)) { await server.haStatus().contains("role: standby") }
                // Once fenced, a answers nothing more: whatever it did not answer before, it never does.
                #expect(!answered.isSet, "a stable write answered without etcd recording that no standby holds it")
                let status = await server.haStatus()
                #expect(status.contains("standby b: NOT in sync"), "\(status)")
                etcd.signal(SIGCONT)
                write.cancel()
                await writer.close()
                link.close()
                await standby.stop()
            }
        }
    }

    @Test(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
    func theSyncStandbyTakesOver() async throws {
        try await withCluster("sync-takeover") { _, etcdClient, keys in
            var a = TestServerOptions.clusterNode("a", etcd: etcdClient, keys: keys)
            a.replicationPort = 0
            let (standby, appended) = try await withTestServer(a) { server, client, root in
                let standby = try StandbyOfParts(name: "b", etcd: etcdClient, keys: keys, port: try #require(server.replicationPort))
                try await ServingNodeTests.eventually("a names b its sync standby", .seconds(20)) {
                    (try? await Self.syncRecord(etcdClient, keys)) == SyncRecord(leader: "a", standby: "b")
                }
                try await Self.write(client, root, "f", [UInt8](repeating: 7, count: 10_000))
                #expect(try await Self.syncRecord(etcdClient, keys) == SyncRecord(leader: "a", standby: "b"))
                // The last record a appended: answered, so b holds it.
                let journal = JournalDirectory(root: try #require(server.durableDirectory))
                var last = journal.checkpointedSequence()
                JournalLog.forEach(journal, after: last) { record, _ in last = record.sequence }
                return (standby, last)
            }
            // a resigned: b, the sync standby, takes over, holding what a answered.
            try await ServingNodeTests.eventually("b active", .seconds(10)) { standby.becameActive }
            #expect(standby.follower.status.acknowledged >= appended)
            await standby.stop()
        }
    }
}

/// A flag one task sets and another reads.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// A TCP link on loopback to `port` that the test can freeze: bytes stop flowing both ways
/// while the connections stay open, as when the process at one end is stopped (SIGSTOP) or
/// the network drops its packets.
final class FreezableLink: Sendable {
    typealias Connection = NIOAsyncChannel<ByteBuffer, ByteBuffer>
    let port: Int
    private let frozen = Atomic<Bool>(false)
    private let listener: NIOAsyncChannel<Connection, Never>
    private let serving = Mutex<Task<Void, Never>?>(nil)

    init(to upstream: Int) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        listener = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0) { channel in
            channel.eventLoop.makeCompletedFuture { try Connection(wrappingChannelSynchronously: channel) }
        }
        port = listener.channel.localAddress?.port ?? 0
        serving.withLock {
            $0 = Task { [self] in
                await withDiscardingTaskGroup { links in
                    try? await listener.executeThenClose { inbound in
                        for try await downstream in inbound {
                            links.addTask { try? await self.relay(downstream, to: upstream, group: group) }
                        }
                    }
                }
            }
        }
    }

    func freeze() { frozen.store(true, ordering: .releasing) }

    /// Closes the listener and every connection through it.
    func close() {
        listener.channel.close(promise: nil)
        serving.withLock { $0?.cancel() }
    }

    private func relay(_ downstream: Connection, to port: Int, group: EventLoopGroup) async throws {
        let upstream = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture { try Connection(wrappingChannelSynchronously: channel) }
        }
        try await downstream.executeThenClose { downIn, downOut in
            try await upstream.executeThenClose { upIn, upOut in
                await withTaskGroup(of: Void.self) { pumps in
                    pumps.addTask { try? await self.pump(downIn, upOut) }
                    pumps.addTask { try? await self.pump(upIn, downOut) }
                    await pumps.next()
                    pumps.cancelAll()
                }
            }
        }
    }

    /// Copies `input` to `output`; while frozen, holds the next buffer (and so reads no more).
    private func pump(_ input: NIOAsyncChannelInboundStream<ByteBuffer>, _ output: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        for try await buffer in input {
            while frozen.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
            try await output.write(buffer)
        }
    }
}
