import Daemon
import Foundation
import HA
import Journal
import Logging
import NIOPosix
import Replication
import ServiceLifecycle
import SwiftNFSTesting
import Synchronization

extension TestServerOptions {
    /// A node `name` of the cluster `keys` in this process: the service address 127.0.0.2 on lo
    /// (moved by a `FakeMover`, so no interface is touched), a 2 s TTL, and a durable directory
    /// (whose journal replication streams).
    static func clusterNode(_ name: String, etcd: EtcdClient, keys: ClusterKeys) -> TestServerOptions {
        var ha = HighAvailabilityConfiguration(etcd: etcd, keys: keys, name: name, address: ServiceAddress("127.0.0.2/8", interface: "lo")!)
        ha.ttl = .seconds(2)
        ha.etcdTimeout = .seconds(1)
        ha.mover = FakeMover()
        var options = TestServerOptions()
        options.highAvailability = ha
        options.durable = true
        return options
    }
}

/// Runs `body` against a real etcd of its own, with a client of it and the keys of a cluster
/// named after `name` (made unique).
func withCluster(_ name: String, _ body: (EtcdProcess, EtcdClient, ClusterKeys) async throws -> Void) async throws {
    try await EtcdProcess.with { etcd in
        let client = try EtcdClient(endpoints: [etcd.url], timeout: .seconds(1))
        try await body(etcd, client, ClusterKeys(cluster: "\(name)-\(UUID().uuidString)"))
    }
}

extension TestServer {
    /// The node's `ha-status` answer ("" when it does not answer), asked from a thread that
    /// may block: `ControlClient` waits for the answer, and on one of Swift concurrency's
    /// threads (two on a two-core machine) tests polling at once would hold up the very
    /// servers they ask, and every election in this process, for the whole timeout.
    func haStatus() async -> String {
        let path = ControlClient.socketPath(stateDirectory: stateDirectory)
        return ((try? await NIOThreadPool.singleton.runIfActive { try ControlClient.send("ha-status", to: path, timeoutSeconds: 5) }) ?? nil) ?? ""
    }
}

/// A standby made of its parts: an election, and a follower of the active's replication port
/// into a journal of its own; its role changes are recorded.
final class StandbyOfParts: Sendable {
    let election: LeaderElection
    let follower: ReplicationFollower
    let directory: JournalDirectory
    private let writer: JournalWriter
    private let group: ServiceGroup
    private let tasks: Mutex<[Task<Void, Never>]>
    private let following: Mutex<Task<Void, Never>?>
    private let active = Atomic<Bool>(false)

    init(name: String, etcd: EtcdClient, keys: ClusterKeys, port: Int) throws {
        var logger = Logger(label: "standby-\(name)")
        logger.logLevel = .critical
        directory = JournalDirectory(root: NSTemporaryDirectory() + "swiftnfs-standby-\(UUID().uuidString)")
        writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, logger: logger)
        let election = LeaderElection(configuration: .init(keys: keys, name: name, address: "127.0.0.2", ttl: .seconds(2)),
                                      client: etcd, logger: logger)
        self.election = election
        follower = ReplicationFollower(writer: writer, name: name, retryInterval: .milliseconds(100), logger: logger,
                                       source: { .init(host: "127.0.0.1", port: port) },
                                       onStatus: { election.setReplication(inSync: $0.published.inSync, lagBytes: $0.published.lagBytes) })
        group = ServiceGroup(configuration: .init(services: [election], logger: logger))
        tasks = Mutex([])
        following = Mutex(nil)
        tasks.withLock {
            $0 = [
                Task { [self] in try? await group.run() },
                Task { [self] in
                    for await change in election.roleChanges {
                        if case .active = change { active.store(true, ordering: .releasing) }
                    }
                },
            ]
        }
        following.withLock { $0 = Task { [self] in await follower.run() } }
    }

    /// Whether its election ever made it the active.
    var becameActive: Bool { active.load(ordering: .acquiring) }

    /// The follower stops (its connection closes); the election goes on.
    func stopFollowing() async {
        guard let task = following.withLock({ $0 }) else { return }
        task.cancel()
        await task.value
    }

    func stop() async {
        await stopFollowing()
        await group.triggerGracefulShutdown()
        for t in tasks.withLock({ $0 }) {
            t.cancel()
            await t.value
        }
        writer.stop()
        try? FileManager.default.removeItem(atPath: directory.root)
    }
}
