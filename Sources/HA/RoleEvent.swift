import FoundationEssentials

/// A role change as one line of JSON (what `swiftnfsd ha campaign` prints):
/// `{"node": "a", "event": "active"|"standby"|"fenced"|"resigned", "epoch": N, "leader": ...,
/// "reason": ..., "monotonic_ns": T, "active_until_ns": T}`. `monotonic_ns` is CLOCK_MONOTONIC
/// when the line was written, comparable between processes on one host; `active_until_ns`
/// (fenced only) is when the node stopped considering itself active.
package struct RoleEvent: Codable, Hashable, Sendable {
    package var node: String
    package var event: String
    package var epoch: Int64?
    package var leader: String?
    package var reason: String?
    package var monotonicNs: Int64
    package var activeUntilNs: Int64?

    enum CodingKeys: String, CodingKey {
        case node, event, epoch, leader, reason
        case monotonicNs = "monotonic_ns"
        case activeUntilNs = "active_until_ns"
    }

    package init(node: String, change: RoleChange, now: Duration) {
        self.node = node
        monotonicNs = Self.nanoseconds(now)
        switch change {
        case .active(let epoch):
            event = "active"
            self.epoch = epoch
        case .standby(let leader, let epoch):
            event = "standby"
            self.leader = leader
            self.epoch = epoch
        case .fenced(let epoch, let reason, let until):
            event = "fenced"
            self.epoch = epoch
            self.reason = reason.description
            activeUntilNs = Self.nanoseconds(until)
        case .resigned(let epoch, let reason):
            event = "resigned"
            self.epoch = epoch
            self.reason = reason
        }
    }

    package static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }
}
