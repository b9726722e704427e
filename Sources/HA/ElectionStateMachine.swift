/// Why an active node stopped considering itself active without being asked to.
package enum FenceReason: Hashable, Sendable, CustomStringConvertible {
    /// No renewal of the lease was proven within its TTL (less the safety margin), counted
    /// from the moment the last successful renewal was sent.
    case leaseUnproven
    /// As `leaseUnproven`, found after the node had not run for this long (SIGSTOP, a pause).
    case paused(Duration)
    /// etcd says the lease no longer exists.
    case leaseLost
    /// The leader key is gone or belongs to another leadership.
    case leadershipLost

    package var description: String {
        switch self {
        case .leaseUnproven: "no lease renewal proven within the TTL"
        case .paused(let gap): "the process did not run for \(gap) (stopped or paused); its lease is unproven"
        case .leaseLost: "etcd no longer knows the lease"
        case .leadershipLost: "the leader key is gone or another node's"
        }
    }
}

/// What a node reports to its owner, in order. Anything that acts as the active (serving,
/// holding the address) starts on `active` and stops on `fenced` or `resigned`.
package enum RoleChange: Hashable, Sendable {
    /// This node leads, for `epoch` (the leader key's create revision).
    case active(epoch: Int64)
    /// Another node leads (`leader`, for `epoch`), or none does yet.
    case standby(leader: String?, epoch: Int64?)
    /// This node led and must stop at once. It stopped considering itself active at
    /// `activeUntil` (monotonic time of the node's clock): no other node can have become active
    /// before then.
    case fenced(epoch: Int64, reason: FenceReason, activeUntil: Duration)
    /// This node led and handed over on purpose (a switchover, a shutdown).
    case resigned(epoch: Int64, reason: String)
}

/// The decisions of one node in the election, without I/O: the driver (`LeaderElection`) asks
/// `nextAction(now:)`, performs it against etcd, and reports the outcome through the method
/// named after it. Time is given by the caller (a monotonic clock; a fake one in tests).
///
/// Fencing: an active node considers itself active only while `now` is before
/// `provenUntil - safetyMargin`, where `provenUntil` is the time the last successful renewal
/// was *sent* plus the TTL etcd granted. etcd cannot let the lease expire before that (it counts
/// the TTL from when it received the renewal, later than it was sent), so no other node can
/// become active while this one believes it is. Every call starts with that check, so a node
/// that was frozen fences itself before it does anything else, however etcd answers later.
package struct ElectionStateMachine: Sendable {
    package struct Configuration: Hashable, Sendable {
        package var name: String
        /// The lease TTL to ask for (etcd may grant more; the granted TTL is what counts).
        package var ttl: Duration
        /// How long before the proven end of its lease the active stops considering itself active.
        package var safetyMargin: Duration
        /// How often the lease is renewed.
        package var renewInterval: Duration
        /// How often the cluster's keys are read (for the leader key, a switchover, members).
        package var pollInterval: Duration
        /// How long to wait after a failed call before trying again.
        package var retryInterval: Duration
        /// During a switchover, how long nodes other than its target wait before campaigning.
        package var switchoverHoldOff: Duration

        package init(name: String, ttl: Duration = .seconds(5)) {
            self.name = name
            self.ttl = ttl
            safetyMargin = ttl / 5
            renewInterval = ttl / 3
            pollInterval = max(.milliseconds(100), min(.milliseconds(250), ttl / 20))
            retryInterval = max(.milliseconds(100), min(.milliseconds(250), ttl / 20))
            switchoverHoldOff = .seconds(2)
        }
    }

    package enum Action: Hashable, Sendable {
        /// Tell the owner (in this order, before anything else is done).
        case announce(RoleChange)
        /// Tell the owner `.fenced(...)` first, then best-effort delete the leader key (if it is
        /// still `epoch`'s) and revoke the lease; report `released(now:)`.
        case fence(RoleChange, lease: Int64)
        /// Tell the owner `.resigned(...)` first, then delete the leader key (if it is still
        /// `epoch`'s) and revoke the lease; report `released(now:)`.
        case resign(RoleChange, lease: Int64)
        /// Grant a lease of `ttl`; report `leaseGranted` or `callFailed`.
        case grantLease(ttl: Duration)
        /// Renew; report `leaseRenewed`, `leaseLost` or `callFailed`.
        case renewLease(id: Int64)
        /// Put this node's member key (and node key) under the lease; report `memberPublished`.
        case publishMember(MemberRecord, lease: Int64)
        /// Read the cluster's keys; report `observed` or `callFailed`.
        case observe
        /// Create the leader key under the lease if absent and the sync key is still at
        /// `syncRevision` (0: absent); report `campaigned`.
        case campaign(lease: Int64, syncRevision: Int64)
        /// Nothing to do before `until`, unless an outcome arrives.
        case wait(until: Duration)
        /// On the way out of a standby: revoke the lease (which deletes the member key).
        case revoke(lease: Int64)
    }

    struct Lease: Hashable, Sendable {
        var id: Int64
        var ttl: Duration
        var provenUntil: Duration
        var renewalDue: Duration
        var lost = false
        var published: MemberRecord?
    }

    enum Role: Hashable, Sendable {
        case standby
        case active(epoch: Int64)
        /// Told to the owner as fenced or resigned; the lease and key are being released.
        case releasing
    }

    package let configuration: Configuration
    package var address: String
    /// What this node says of its replication in its member key.
    package var inSync = false
    package var lagBytes: Int64 = 0

    private(set) var role = Role.standby
    private(set) var lease: Lease?
    private var nextGrant = Duration.zero
    private var nextObservation = Duration.zero
    private(set) var view: ClusterView?
    private var announced: RoleChange?
    /// Campaign no earlier than this (after resigning or being fenced, and during another node's switchover).
    private var holdOffUntil: Duration?
    /// When this node first saw no leader while a switchover to another node was asked for.
    private var switchoverWaitStarted: Duration?
    /// Set when an observation shows the leader key gone or another's; fences at the next step.
    private var leadershipLost = false
    /// Why this standby does not campaign for the absent leader key (the sync record names
    /// other nodes), while it does not; nil when it may (or a leader is there).
    package private(set) var campaignRefusal: String?

    /// Why this node may not take over, as the cluster was last read: the sync record names
    /// other nodes (nil: it may, or it is the active).
    package var takeoverRefusal: String? {
        guard case .standby = role else { return nil }
        return view?.takeoverRefusal(of: configuration.name)
    }
    /// The last time the driver asked or told anything: a gap longer than the TTL means the
    /// process did not run.
    private var lastActivity: Duration?

    package init(configuration: Configuration, address: String) {
        self.configuration = configuration
        self.address = address
    }

    private var margin: Duration { configuration.safetyMargin }

    /// The epoch this node leads for, if it may act as the active at `now`.
    package func activeEpoch(now: Duration) -> Int64? {
        guard case .active(let epoch) = role, let lease, !lease.lost, !leadershipLost,
              now < lease.provenUntil - margin else { return nil }
        return epoch
    }

    /// When an active must give up if it has not proven its lease again: every call it makes
    /// must end by then, so that it can fence in time.
    package var activeDeadline: Duration? {
        guard case .active = role, let lease else { return nil }
        return lease.provenUntil - margin
    }

    /// The one decision point.
    package mutating func nextAction(now: Duration) -> Action {
        if let fence = fenceIfUnproven(now: now) { return fence }
        lastActivity = now
        if case .releasing = role { return .wait(until: now + configuration.retryInterval) }
        if let change = pendingAnnouncement, change != announced {
            announced = change
            return .announce(change)
        }
        guard let lease else {
            return now >= nextGrant ? .grantLease(ttl: configuration.ttl) : .wait(until: nextGrant)
        }
        if now >= lease.renewalDue { return .renewLease(id: lease.id) }
        let record = memberRecord
        if lease.published != record { return .publishMember(record, lease: lease.id) }
        if now >= nextObservation || view == nil { return .observe }
        // A switchover hands over only to a node that may take over (the sync standby).
        if case .active(let epoch) = role, let target = view?.switchoverTarget, target != configuration.name,
           view?.members[target] != nil, view?.takeoverRefusal(of: target) == nil {
            return resign(epoch: epoch, lease: lease.id, reason: "switchover to \(target)")
        }
        campaignRefusal = nil
        if case .standby = role, let view, view.leader == nil {
            if let refusal = view.takeoverRefusal(of: configuration.name) {
                campaignRefusal = refusal
                return .wait(until: wakeUp(lease))
            }
            let allowed = campaignAllowedAt(now: now)
            // The campaign's put must be under a lease proven alive for a while yet.
            if now >= allowed {
                return now < lease.provenUntil - margin
                    ? .campaign(lease: lease.id, syncRevision: view.sync?.revision ?? 0) : .renewLease(id: lease.id)
            }
            return .wait(until: min(allowed, wakeUp(lease)))
        }
        return .wait(until: wakeUp(lease))
    }

    private func wakeUp(_ lease: Lease) -> Duration {
        var t = min(lease.renewalDue, nextObservation)
        if case .active = role { t = min(t, lease.provenUntil - margin) }
        return t
    }

    /// The first check of every step: an active whose lease is no longer proven fences.
    private mutating func fenceIfUnproven(now: Duration) -> Action? {
        guard case .active(let epoch) = role, let lease else { return nil }
        let reason: FenceReason
        if leadershipLost {
            reason = .leadershipLost
        } else if lease.lost {
            reason = .leaseLost
        } else if now >= lease.provenUntil - margin {
            let gap = lastActivity.map { now - $0 } ?? .zero
            reason = gap >= lease.ttl - margin ? .paused(gap) : .leaseUnproven
        } else {
            return nil
        }
        return fence(epoch: epoch, lease: lease, reason: reason, now: now)
    }

    private mutating func fence(epoch: Int64, lease: Lease, reason: FenceReason, now: Duration) -> Action {
        role = .releasing
        lastActivity = now
        let change = RoleChange.fenced(epoch: epoch, reason: reason, activeUntil: min(now, lease.provenUntil - margin))
        announced = change
        return .fence(change, lease: lease.id)
    }

    private mutating func resign(epoch: Int64, lease: Int64, reason: String) -> Action {
        role = .releasing
        let change = RoleChange.resigned(epoch: epoch, reason: reason)
        announced = change
        return .resign(change, lease: lease)
    }

    /// When this standby may campaign for the absent leader key.
    private mutating func campaignAllowedAt(now: Duration) -> Duration {
        var allowed = holdOffUntil ?? now
        if let target = view?.switchoverTarget, view?.members[target] != nil {
            if target == configuration.name { return now }
            let started = switchoverWaitStarted ?? now
            switchoverWaitStarted = started
            allowed = max(allowed, started + configuration.switchoverHoldOff)
        }
        return allowed
    }

    /// What the owner should hear now, if it has not yet.
    private var pendingAnnouncement: RoleChange? {
        switch role {
        case .active(let epoch): return .active(epoch: epoch)
        case .standby:
            guard let view else { return nil }  // nothing known yet
            return .standby(leader: view.leader?.name, epoch: view.leader?.epoch)
        case .releasing: return nil
        }
    }

    private var memberRecord: MemberRecord {
        let active = if case .active = role { true } else { false }
        return MemberRecord(name: configuration.name, role: active ? "active" : "standby",
                            inSync: active || inSync, lagBytes: active ? 0 : lagBytes, address: address)
    }

    // MARK: Outcomes

    package mutating func leaseGranted(id: Int64, ttl: Duration, sentAt: Duration, now: Duration) {
        lastActivity = now
        lease = Lease(id: id, ttl: ttl, provenUntil: sentAt + ttl, renewalDue: sentAt + configuration.renewInterval)
    }

    /// A renewal sent at `sentAt` succeeded: the lease is proven until `sentAt + ttl`, not
    /// from when the answer came, which may be much later.
    package mutating func leaseRenewed(id: Int64, ttl: Duration, sentAt: Duration, now: Duration) {
        lastActivity = now
        guard var renewed = lease, renewed.id == id else { return }
        renewed.provenUntil = max(renewed.provenUntil, sentAt + ttl)
        renewed.renewalDue = sentAt + configuration.renewInterval
        lease = renewed
    }

    /// etcd no longer knows the lease: an active fences at its next step, a standby gets a new one.
    package mutating func leaseLost(id: Int64, now: Duration) {
        lastActivity = now
        guard lease?.id == id else { return }
        if case .active = role {
            lease?.lost = true
        } else if case .standby = role {
            lease = nil
            nextGrant = now
        }
    }

    package enum Call: Hashable, Sendable { case grant, renew, publish, observe, campaign }

    /// A call did not get an answer (or got an error): it is tried again a little later.
    package mutating func callFailed(_ call: Call, now: Duration) {
        lastActivity = now
        let retry = now + configuration.retryInterval
        switch call {
        case .grant: nextGrant = retry
        case .renew: lease?.renewalDue = retry
        case .publish, .observe, .campaign: nextObservation = retry
        }
    }

    package mutating func memberPublished(_ record: MemberRecord, lease id: Int64, now: Duration) {
        lastActivity = now
        if lease?.id == id { lease?.published = record }
    }

    package mutating func observed(_ view: ClusterView, now: Duration) {
        lastActivity = now
        self.view = view
        nextObservation = now + configuration.pollInterval
        if view.leader != nil || view.switchoverTarget == nil { switchoverWaitStarted = nil }
        guard let lease else { return }
        switch role {
        case .active(let epoch):
            if view.leader?.epoch != epoch || view.leader?.lease != lease.id { leadershipLost = true }
        case .standby:
            // Our own campaign won though its answer was lost: the key is under our lease.
            if let leader = view.leader, leader.lease == lease.id, leader.name == configuration.name {
                role = .active(epoch: leader.epoch)
                holdOffUntil = nil
            }
        case .releasing:
            break
        }
    }

    package enum CampaignOutcome: Hashable, Sendable {
        case won(epoch: Int64)
        case lost(LeaderInfo?)
    }

    package mutating func campaigned(_ outcome: CampaignOutcome, lease id: Int64, now: Duration) {
        lastActivity = now
        guard lease?.id == id, case .standby = role else { return }
        switch outcome {
        case .won(let epoch):
            role = .active(epoch: epoch)
            holdOffUntil = nil
            switchoverWaitStarted = nil
        case .lost(let leader?):
            view?.leader = leader
            nextObservation = now + configuration.pollInterval
        case .lost(nil):
            // No leader, yet the campaign failed: the sync key changed since it was read. Read
            // it again before anything else.
            view = nil
        }
    }

    /// The lease and leader key were released after `fence` or `resign` (or could not be:
    /// they expire by themselves). The node starts again as a standby with a new lease, and
    /// leaves the next leadership to the others for a moment.
    package mutating func released(now: Duration) {
        lastActivity = now
        role = .standby
        lease = nil
        view = nil
        nextGrant = now
        holdOffUntil = now + configuration.switchoverHoldOff
        leadershipLost = false
    }

    /// What to do on the way out: resign if active, else revoke the lease. An active whose
    /// lease is already unproven fences instead.
    package mutating func leave(now: Duration) -> Action? {
        if let fence = fenceIfUnproven(now: now) { return fence }
        guard let lease else { return nil }
        if case .active(let epoch) = role { return resign(epoch: epoch, lease: lease.id, reason: "shutting down") }
        role = .releasing
        return .revoke(lease: lease.id)
    }
}
