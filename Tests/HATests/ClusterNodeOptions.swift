import Daemon
import Foundation
import HA
import NIOPosix
import SwiftNFSTesting

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
