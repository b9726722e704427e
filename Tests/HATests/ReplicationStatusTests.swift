import Daemon
import Foundation
import HA
import NIOCore
import SwiftNFSTesting
import Testing

/// Replication as a cluster shows it, against a real etcd: an active serving in this process
/// (`withTestServer` with `--ha-*` and a replication listener) and a standby made of its parts
/// (an election and a follower on a journal of its own): the standby's member key says in sync
/// with no lag once it has caught up, and the active's status lists it; when the standby stops
/// following, both say it is not in sync.
@Suite struct ReplicationStatusTests {
    @Test(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
    func aStandbyThatFollowsIsInSyncInTheClusterStatusAndNotOnceItStops() async throws {
        try await withCluster("replication") { _, etcdClient, keys in
            var options = TestServerOptions.clusterNode("a", etcd: etcdClient, keys: keys)
            options.replicationPort = 0
            try await withTestServer(options) { server, client, root in
                let f = try #require(try await client.create(root, Array("f".utf8)).object)
                _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: [UInt8](repeating: 7, count: 10_000)), stable: .fileSync)
                let port = try #require(server.replicationPort)

                // The standby "b": its election, and a follower whose status it publishes.
                let standby = try StandbyOfParts(name: "b", etcd: etcdClient, keys: keys, port: port)
                func member(_ name: String) async throws -> ClusterStatus.Member? {
                    try await ClusterView.read(from: etcdClient, keys: keys).status.members.first { $0.name == name }
                }
                try await ServingNodeTests.eventually("b in sync in etcd") {
                    guard let b = try? await member("b") else { return false }
                    return b.role == "standby" && b.inSync && b.lagBytes == 0
                }
                #expect(try await member("a")?.role == "active")
                #expect(standby.follower.status.acknowledged >= 2)
                try await ServingNodeTests.eventually("the active lists b") { await server.haStatus().contains("standby b: in sync") }
                let text = await server.haStatus()
                #expect(text.contains("in sync: true"), "\(text)")

                // The standby stops following: not in sync, on both sides.
                await standby.stopFollowing()
                try await ServingNodeTests.eventually("b not in sync in etcd") { (try? await member("b"))?.inSync == false }
                try await ServingNodeTests.eventually("the active has no standby in sync") {
                    let text = await server.haStatus()
                    return text.contains("in sync: false") && !text.contains("standby b")
                }
                await standby.stop()
            }
        }
    }
}
