import FoundationEssentials

/// The leader key as read: who leads, since which revision, under which lease.
package struct LeaderInfo: Hashable, Sendable {
    package var name: String
    /// The leader key's create revision: grows with every new leadership, never repeats.
    package var epoch: Int64
    package var lease: Int64

    package init(name: String, epoch: Int64, lease: Int64) {
        self.name = name
        self.epoch = epoch
        self.lease = lease
    }

    /// The leader key as stored.
    package init(_ kv: EtcdKeyValue) throws {
        let record = try kv.decode(LeaderRecord.self)
        self.init(name: record.name, epoch: kv.createRevision?.value ?? 0, lease: kv.lease?.value ?? 0)
    }
}

/// The sync key as read: its record, and the revision it was last written at (which a campaign
/// compares, so that a record changed since it was read makes the campaign fail).
package struct SyncInfo: Hashable, Sendable {
    package var record: SyncRecord
    package var revision: Int64

    package init(record: SyncRecord, revision: Int64) {
        self.record = record
        self.revision = revision
    }
}

/// Everything under a cluster's prefix, read in one range request.
package struct ClusterView: Hashable, Sendable {
    package var leader: LeaderInfo?
    /// The sync key (nil: none, as in a new cluster: any node may take over).
    package var sync: SyncInfo?
    /// The node a planned handover names, while one is asked for.
    package var switchoverTarget: String?
    /// The nodes whose member key exists (their lease is alive), by name.
    package var members: [String: MemberRecord]
    /// Every node that ever joined, live or not.
    package var nodes: Set<String>

    package init(leader: LeaderInfo? = nil, sync: SyncInfo? = nil, switchoverTarget: String? = nil,
                 members: [String: MemberRecord] = [:], nodes: Set<String> = []) {
        self.leader = leader
        self.sync = sync
        self.switchoverTarget = switchoverTarget
        self.members = members
        self.nodes = nodes
    }

    /// Reads the view from the keys of `keys.prefix`; keys that do not parse are skipped,
    /// except a leader key, whose holder must be known, and a sync key, whose names decide who
    /// may take over.
    package init(_ kvs: [EtcdKeyValue], keys: ClusterKeys) throws {
        self.init()
        for kv in kvs {
            let key = kv.keyString
            if key == keys.leader {
                leader = try LeaderInfo(kv)
            } else if key == keys.sync {
                sync = SyncInfo(record: try kv.decode(SyncRecord.self), revision: kv.modRevision?.value ?? 0)
            } else if key == keys.switchover {
                switchoverTarget = try? kv.decode(SwitchoverRecord.self).to
            } else if key.hasPrefix(keys.membersPrefix), let record = try? kv.decode(MemberRecord.self) {
                members[String(key.dropFirst(keys.membersPrefix.count))] = record
            } else if key.hasPrefix(keys.nodesPrefix) {
                nodes.insert(String(key.dropFirst(keys.nodesPrefix.count)))
            }
        }
    }

    /// Reads the view from etcd.
    package static func read(from client: EtcdClient, keys: ClusterKeys, timeout: Duration? = nil) async throws -> ClusterView {
        try ClusterView(await client.list(prefix: keys.prefix + "/", timeout: timeout), keys: keys)
    }

    /// Why `node` may not take over (nil: it may): see `SyncRecord.refusal(of:)`.
    package func takeoverRefusal(of node: String) -> String? {
        sync?.record.refusal(of: node)
    }

    /// What `swiftnfsd ha status` prints.
    package var status: ClusterStatus {
        let names = nodes.union(members.keys).union(leader.map { [$0.name] } ?? [])
        let rows = names.sorted().map { name -> ClusterStatus.Member in
            let record = members[name]
            let role = leader?.name == name ? "active" : record != nil ? "standby" : "down"
            return ClusterStatus.Member(name: name, role: role, inSync: record?.inSync ?? false, lagBytes: record?.lagBytes ?? 0,
                                        notEligible: role == "active" ? nil : takeoverRefusal(of: name))
        }
        return ClusterStatus(active: leader?.name, epoch: leader?.epoch ?? 0, sync: sync?.record, members: rows)
    }
}

/// `{"active": NAME-or-null, "epoch": N, "members": [{"name", "role", "in_sync", "lag_bytes",
/// "not_eligible"}], "sync": {"leader", "standby"}-or-null}`: the active is the leader key's
/// holder, a live member that does not lead is a standby, a node that joined once but has no
/// live member key is down. With no active, the epoch is 0. `sync` is the sync key's record;
/// `not_eligible` (only on a node that may not take over) says why.
package struct ClusterStatus: Codable, Hashable, Sendable {
    package struct Member: Codable, Hashable, Sendable {
        package var name: String
        package var role: String
        package var inSync: Bool
        package var lagBytes: Int64
        package var notEligible: String?

        enum CodingKeys: String, CodingKey {
            case name, role
            case inSync = "in_sync"
            case lagBytes = "lag_bytes"
            case notEligible = "not_eligible"
        }
    }

    package var active: String?
    package var epoch: Int64
    package var sync: SyncRecord?
    package var members: [Member]

    enum CodingKeys: String, CodingKey { case active, epoch, sync, members }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(active, forKey: .active)  // null when none, not left out
        try container.encode(epoch, forKey: .epoch)
        try container.encode(members, forKey: .members)
        try container.encode(sync, forKey: .sync)
    }

    /// One line of JSON, keys in the documented order.
    package var json: String { String(decoding: jsonData(), as: UTF8.self) }
}
