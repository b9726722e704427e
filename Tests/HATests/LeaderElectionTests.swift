import FileStore
import Glibc
import FoundationEssentials
import HA
import Logging
import ServiceLifecycle
import SwiftNFSTesting
import Synchronization
import Testing

/// Elections in this process against a real etcd, with a lease of 2 s (etcd's least).
@Suite(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
struct LeaderElectionTests {
    static let ttl = Duration.seconds(2)

    /// A node: its election in a ServiceGroup of its own (to stop it gracefully), and the
    /// role changes it reported.
    final class Node: Sendable {
        let name: String
        let election: LeaderElection
        let group: ServiceGroup
        private let changes = Mutex<[RoleChange]>([])

        init(name: String, etcd: String) throws {
            self.name = name
            var logger = Logger(label: "ha-test")
            logger.logLevel = .warning
            let client = try EtcdClient(endpoints: [etcd])
            election = LeaderElection(configuration: .init(keys: ClusterKeys(cluster: "test"), name: name, address: "127.0.0.1",
                                                           ttl: LeaderElectionTests.ttl),
                                      client: client, logger: logger)
            group = ServiceGroup(configuration: .init(services: [election], logger: logger))
        }

        func record() async {
            for await change in election.roleChanges { changes.withLock { $0.append(change) } }
        }

        var events: [RoleChange] { changes.withLock { $0 } }

        func waitFor(_ what: String, timeout: Duration, _ match: (RoleChange) -> Bool) async throws -> RoleChange {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let found = events.first(where: match) { return found }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw ToolFailure(message: "\(name): no \(what) within \(timeout); events: \(events)", result: nil)
        }
    }

    /// Runs nodes `names` against `etcd` while `body` runs, then stops them gracefully.
    func withNodes(_ names: [String], etcd: EtcdProcess, _ body: ([Node]) async throws -> Void) async throws {
        let nodes = try names.map { try Node(name: $0, etcd: etcd.url) }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for node in nodes {
                tasks.addTask { try await node.group.run() }
                tasks.addTask { await node.record() }
            }
            do {
                try await body(nodes)
            } catch {
                for node in nodes { await node.group.triggerGracefulShutdown() }
                throw error
            }
            for node in nodes { await node.group.triggerGracefulShutdown() }
            try await tasks.waitForAll()
        }
    }

    static func isActive(_ change: RoleChange) -> Bool { if case .active = change { true } else { false } }

    /// Waits until exactly one node is active, checking meanwhile that two never are; returns it.
    func theActive(of nodes: [Node], timeout: Duration = .seconds(10)) async throws -> (Node, Int64) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let active = nodes.compactMap { n in n.election.activeEpoch().map { (n, $0) } }
            #expect(active.count <= 1, "two actives: \(active.map(\.0.name))")
            if let first = active.first { return first }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ToolFailure(message: "no node became active within \(timeout): \(nodes.map { "\($0.name): \($0.events)" })", result: nil)
    }

    @Test func oneOfTwoLeadsAndTheEpochGrowsWhenItHandsOver() async throws {
        try await EtcdProcess.with { etcd in try await withNodes(["a", "b"], etcd: etcd, handOver) }
    }

    func handOver(_ nodes: [Node]) async throws {
        let found = try await theActive(of: nodes)
        let first = found.0, epoch = found.1
        // For a while both keep their roles, and only one is ever active.
        for _ in 0..<40 {
            #expect(nodes.filter { $0.election.activeEpoch() != nil }.map(\.name) == [first.name])
            try await Task.sleep(for: .milliseconds(25))
        }
        let other = nodes.first { $0 !== first }!
        _ = try await other.waitFor("standby under \(first.name)", timeout: .seconds(5)) { $0 == .standby(leader: first.name, epoch: epoch) }
        await first.group.triggerGracefulShutdown()
        let next = try await other.waitFor("active", timeout: .seconds(3), Self.isActive)
        #expect(Self.epoch(next) > epoch)
        #expect(first.events.last == .resigned(epoch: epoch, reason: "shutting down"))
    }

    static func epoch(_ change: RoleChange) -> Int64 {
        switch change {
        case .active(let e), .fenced(let e, _, _), .resigned(let e, _): e
        case .standby(_, let e): e ?? 0
        }
    }

    @Test func aRevokedLeaseFencesTheActiveAndTheStandbyTakesOver() async throws {
        try await EtcdProcess.with { etcd in
            try await withNodes(["a", "b"], etcd: etcd) { try await revokeTheActivesLease($0, etcd: etcd) }
        }
    }

    func revokeTheActivesLease(_ nodes: [Node], etcd: EtcdProcess) async throws {
        let found = try await theActive(of: nodes)
        let first = found.0, epoch = found.1
        let other = nodes.first { $0 !== first }!
        let client = try EtcdClient(endpoints: [etcd.url])
        let leader = try #require(try await ClusterView.read(from: client, keys: ClusterKeys(cluster: "test")).leader)
        #expect(leader.name == first.name && leader.epoch == epoch)
        let start = ContinuousClock.now
        try await client.revoke(lease: leader.lease)
        let fenced = try await first.waitFor("fenced", timeout: Self.ttl) { if case .fenced = $0 { true } else { false } }
        #expect(Self.epoch(fenced) == epoch)
        #expect(first.election.activeEpoch() == nil)
        _ = try await other.waitFor("active", timeout: Self.ttl + .seconds(2), Self.isActive)
        #expect(ContinuousClock.now - start < Self.ttl + .seconds(2))
    }

    @Test func anActiveThatCannotReachEtcdFencesWithinTheTTL() async throws {
        try await EtcdProcess.with { etcd in
            try await withNodes(["a"], etcd: etcd) { nodes in
                let node = nodes[0]
                _ = try await theActive(of: nodes)
                // etcd stops answering (its connections stay open): the renewals hang until cut off.
                etcd.signal(SIGSTOP)
                defer { etcd.signal(SIGCONT) }
                let start = ContinuousClock.now
                let startedAt = SystemClock().now
                let fenced = try await node.waitFor("fenced", timeout: Self.ttl + .seconds(2)) { if case .fenced = $0 { true } else { false } }
                // Seen by this test within the TTL, give or take a busy machine's scheduling.
                #expect(ContinuousClock.now - start <= Self.ttl + .seconds(1))
                #expect(node.election.activeEpoch() == nil)
                if case .fenced(_, let reason, let activeUntil) = fenced {
                    #expect(reason == .leaseUnproven)
                    // What the node claimed: active no longer than the TTL after etcd stopped (its
                    // last renewal was sent before that), whatever the scheduling.
                    #expect(activeUntil - startedAt <= Self.ttl, "active until \(activeUntil - startedAt) after etcd stopped")
                }
            }
        }
    }
}
