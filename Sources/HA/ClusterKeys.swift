import FoundationEssentials

/// Where a cluster keeps its state in etcd, all under one prefix (`/swiftnfs/<cluster>` by
/// default):
///
///     <prefix>/leader           the active's LeaderRecord, under its lease; created only if absent,
///                               so its create revision is the epoch
///     <prefix>/members/<name>   each live node's MemberRecord, under that node's lease
///     <prefix>/nodes/<name>     each node that ever joined (no lease): a node there but not in
///                               members/ is down
///     <prefix>/switchover       a planned handover's SwitchoverRecord, under the requester's lease
///     <prefix>/handle-key       the 16 bytes every node signs file handles with (no lease): set
///                               by the first node that starts, taken by every other
///     <prefix>/lock-clients     the active's status monitor memory (no lease): the clients that
///                               hold locks, which the next active notifies and lets reclaim
///     <prefix>/sync             the active's SyncRecord (no lease): itself, and the standby that
///                               holds everything it has acknowledged (or none); only these two
///                               may campaign (Patroni's synchronous mode)
package struct ClusterKeys: Sendable, Hashable {
    package let prefix: String

    package init(prefix: String) {
        var p = prefix
        while p.hasSuffix("/") { p.removeLast() }
        self.prefix = p
    }

    package init(cluster: String) { self.init(prefix: "/swiftnfs/" + cluster) }

    package var leader: String { prefix + "/leader" }
    package var switchover: String { prefix + "/switchover" }
    package var handleKey: String { prefix + "/handle-key" }
    package var lockClients: String { prefix + "/lock-clients" }
    package var sync: String { prefix + "/sync" }
    package var membersPrefix: String { prefix + "/members/" }
    package var nodesPrefix: String { prefix + "/nodes/" }
    package func member(_ name: String) -> String { membersPrefix + name }
    package func node(_ name: String) -> String { nodesPrefix + name }
}

/// The value of the leader key.
package struct LeaderRecord: Codable, Hashable, Sendable {
    package var name: String
    /// Where the active serves (what `--ha-address` says), for whoever needs to find it.
    package var address: String

    package init(name: String, address: String) {
        self.name = name
        self.address = address
    }
}

/// The value of a member key: what the node says of itself.
package struct MemberRecord: Codable, Hashable, Sendable {
    package var name: String
    package var role: String
    /// Whether the node holds everything the active has acknowledged (the active itself: true).
    package var inSync: Bool
    package var lagBytes: Int64
    package var address: String

    package init(name: String, role: String, inSync: Bool, lagBytes: Int64, address: String) {
        self.name = name
        self.role = role
        self.inSync = inSync
        self.lagBytes = lagBytes
        self.address = address
    }

    enum CodingKeys: String, CodingKey {
        case name, role, address
        case inSync = "in_sync"
        case lagBytes = "lag_bytes"
    }
}

/// The value of the switchover key: the node that is to become active.
package struct SwitchoverRecord: Codable, Hashable, Sendable {
    package var to: String

    package init(to: String) { self.to = to }
}

/// The value of the sync key: the node that leads (or led last) and the standby guaranteed to
/// hold every record it has acknowledged to a client, if one is. Written by the active only:
/// as it takes over (with no standby), once a standby's acknowledgements hold back its answers
/// (naming it), and before it answers from its own journal alone again (no standby). So a node
/// it names holds everything clients were told is durable, and no other node may take over.
package struct SyncRecord: Codable, Hashable, Sendable {
    package var leader: String
    package var standby: String?

    package init(leader: String, standby: String?) {
        self.leader = leader
        self.standby = standby
    }

    /// Why `node` may not take over (nil: it may): a node the record does not name may lack
    /// records the leader acknowledged.
    package func refusal(of node: String) -> String? {
        guard node != leader, node != standby else { return nil }
        return "the sync record names \(leader) (last active) and \(standby.map { "\($0) (sync standby)" } ?? "no sync standby")"
            + ": this node may lack writes \(leader) acknowledged"
    }

    enum CodingKeys: String, CodingKey { case leader, standby }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(leader, forKey: .leader)
        try container.encode(standby, forKey: .standby)  // null when none, not left out
    }
}

extension EtcdKeyValue {
    /// The value decoded as one of the records above.
    package func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: value ?? Data())
        } catch {
            throw EtcdError(.malformedValue, "\(keyString): \(error)")
        }
    }
}

extension Encodable {
    /// The JSON that the records above are stored and printed as: keys sorted, so that the
    /// same value always reads the same.
    package func jsonData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain structs cannot fail.
        return (try? encoder.encode(self)) ?? Data()
    }
}
