import FileStore
import FoundationEssentials
import Logging
import ServiceLifecycle
import Synchronization

/// One node's part in the election, as a `Service`: performs what `ElectionStateMachine`
/// decides against etcd, one call at a time, and reports role changes on `roleChanges` in the
/// order they happen. On graceful shutdown an active resigns, a standby revokes its lease.
///
/// An active's calls are cut off at the moment it must fence, so a slow or silent etcd never
/// keeps it active past its proven lease; `activeEpoch()` answers the same question for
/// whoever needs to check right before acting as the active.
package final class LeaderElection: Service, Sendable {
    package struct Configuration: Sendable {
        package var keys: ClusterKeys
        package var election: ElectionStateMachine.Configuration
        /// Where this node serves, as published in its member key and (when active) the leader key.
        package var address: String
        /// The longest any one etcd call may take (an active's are cut shorter when its lease ends sooner).
        package var callTimeout: Duration = .seconds(2)

        package init(keys: ClusterKeys, name: String, address: String, ttl: Duration = .seconds(5)) {
            self.keys = keys
            self.election = .init(name: name, ttl: ttl)
            self.address = address
        }
    }

    package let configuration: Configuration
    package let roleChanges: AsyncStream<RoleChange>
    private let continuation: AsyncStream<RoleChange>.Continuation
    private let client: EtcdClient
    private let clock: any ServerClock
    private let logger: Logger
    private let machine: Mutex<ElectionStateMachine>
    /// The refusal to campaign last logged (logged once per change of reason).
    private let refusalLogged = Mutex<String?>(nil)

    package init(configuration: Configuration, client: EtcdClient, clock: any ServerClock = SystemClock(), logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.clock = clock
        self.logger = logger
        self.machine = Mutex(ElectionStateMachine(configuration: configuration.election, address: configuration.address))
        (roleChanges, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    private var name: String { configuration.election.name }
    private var keys: ClusterKeys { configuration.keys }

    /// The epoch this node leads for, if it may act as the active right now.
    package func activeEpoch() -> Int64? {
        let now = clock.now
        return machine.withLock { $0.activeEpoch(now: now) }
    }

    /// Until when (this election's clock) the node may act as the active if it proves its lease
    /// no more: what the service address's lifetime must not outlast. Nil when not active.
    package func activeUntil() -> Duration? {
        let now = clock.now
        return machine.withLock { $0.activeEpoch(now: now) != nil ? $0.activeDeadline : nil }
    }

    /// The clock the election goes by (`activeUntil` is on it).
    package var now: Duration { clock.now }

    /// Why this node does not campaign for the absent leader key, while it does not (see
    /// `SyncRecord.refusal(of:)`).
    package func campaignRefusal() -> String? { machine.withLock { $0.campaignRefusal } }

    /// Why this node may not take over, leader or not (see `SyncRecord.refusal(of:)`).
    package func takeoverRefusal() -> String? { machine.withLock { $0.takeoverRefusal } }

    /// What this node publishes of its replication (shown by `ha status`).
    package func setReplication(inSync: Bool, lagBytes: Int64) {
        machine.withLock {
            $0.inSync = inSync
            $0.lagBytes = lagBytes
        }
    }

    package func run() async throws {
        defer { continuation.finish() }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let now = self.clock.now
                let (action, refusal) = self.machine.withLock { ($0.nextAction(now: now), $0.campaignRefusal) }
                self.logRefusal(refusal)
                do {
                    try await self.perform(action, now: now)
                } catch is CancellationError {
                    break
                } catch {
                    // perform reports every etcd failure to the machine; anything else is a bug.
                    self.logger.error("ha.election step failed", metadata: ["ha.error": "\(error)"])
                }
            }
        }
        let now = clock.now
        if let last = machine.withLock({ $0.leave(now: now) }) {
            try? await perform(last, now: now)
        }
    }

    /// The timeout of a call made now: the configured one, cut to when an active must fence.
    private func callTimeout(now: Duration) -> Duration {
        let deadline = machine.withLock { $0.activeDeadline }
        guard let deadline else { return configuration.callTimeout }
        return max(.milliseconds(1), min(configuration.callTimeout, deadline - now))
    }

    private func perform(_ action: ElectionStateMachine.Action, now: Duration) async throws {
        switch action {
        case .announce(let change):
            announce(change)
        case .fence(let change, let lease), .resign(let change, let lease):
            announce(change)
            await release(change, lease: lease)
            let now = clock.now
            machine.withLock { $0.released(now: now) }
        case .revoke(let lease):
            try? await client.revoke(lease: lease, timeout: configuration.callTimeout)
        case .wait(let until):
            // Wake at least every poll interval: a step's outcome may have moved the deadline.
            let pause = min(until - now, configuration.election.pollInterval)
            if pause > .zero { try await clock.sleep(for: pause) }
        case .grantLease(let ttl):
            try await step(.grant, lease: nil, now: now) { try await self.client.grantLease(ttl: ttl, timeout: $0) } report: {
                $0.leaseGranted(id: $1.id, ttl: $1.ttl, sentAt: now, now: $2)
            }
        case .renewLease(let id):
            try await step(.renew, lease: id, now: now) { try await self.client.keepAlive(lease: id, timeout: $0) } report: {
                $0.leaseRenewed(id: id, ttl: $1, sentAt: now, now: $2)
            }
        case .publishMember(let record, let lease):
            let node = LeaderRecord(name: name, address: record.address)
            let txn = TxnRequest(compare: [], success: [
                .put(PutRequest(key: Data(keys.member(name).utf8), value: record.jsonData(), lease: lease)),
                .put(PutRequest(key: Data(keys.node(name).utf8), value: node.jsonData())),
            ])
            try await step(.publish, lease: lease, now: now) { try await self.client.txn(txn, timeout: $0) } report: {
                $0.memberPublished(record, lease: lease, now: $2)
            }
        case .observe:
            try await step(.observe, lease: nil, now: now) {
                try await ClusterView.read(from: self.client, keys: self.keys, timeout: $0)
            } report: {
                $0.observed($1, now: $2)
            }
        case .campaign(let lease, let syncRevision):
            try await step(.campaign, lease: lease, now: now) {
                try await self.campaign(lease: lease, syncRevision: syncRevision, timeout: $0)
            } report: {
                $0.campaigned($1, lease: lease, now: $2)
            }
        }
    }

    /// One etcd call of a step (given its timeout), its outcome reported to the machine:
    /// through `report` (with the time it ended), as a lost lease when etcd no longer knows
    /// `lease`, else as a failed call.
    private func step<Answer>(
        _ call: ElectionStateMachine.Call, lease: Int64?, now: Duration, _ body: (Duration) async throws -> Answer,
        report: (inout ElectionStateMachine, Answer, Duration) -> Void
    ) async throws {
        let answer: Answer
        do {
            answer = try await body(callTimeout(now: now))
        } catch let error as EtcdError where error.code == .leaseNotFound && lease != nil {
            logger.warning("ha.lease lost", metadata: ["ha.lease": "\(lease ?? 0)"])
            let done = clock.now
            machine.withLock { $0.leaseLost(id: lease ?? 0, now: done) }
            return
        } catch {
            try failed(call, error)
            return
        }
        let done = clock.now
        machine.withLock { report(&$0, answer, done) }
    }

    /// The leader key, created only if absent (its create revision is 0) and the sync key is
    /// as the machine read it (`syncRevision`, 0: absent), under the lease: a sync record
    /// written since (naming other nodes) makes the campaign fail.
    private func campaign(lease: Int64, syncRevision: Int64, timeout: Duration) async throws -> ElectionStateMachine.CampaignOutcome {
        let key = Data(keys.leader.utf8)
        let record = LeaderRecord(name: name, address: configuration.address)
        let txn = TxnRequest(compare: [.created(key, at: 0), .modified(Data(keys.sync.utf8), at: syncRevision)],
                             success: [.put(PutRequest(key: key, value: record.jsonData(), lease: lease)), .range(RangeRequest(key: key))],
                             failure: [.range(RangeRequest(key: key))])
        let answer = try await client.txn(txn, timeout: timeout)
        let kv = answer.responses?.compactMap { $0.responseRange?.kvs?.first }.first
        if answer.succeeded == true, let epoch = kv?.createRevision?.value {
            logger.notice("ha.campaign won", metadata: ["ha.epoch": "\(epoch)"])
            return .won(epoch: epoch)
        }
        return .lost(try kv.map(LeaderInfo.init))
    }

    /// Deletes the leader key if it is still this leadership's, and revokes the lease (which
    /// deletes the member key); best effort and short: what fails expires with the lease.
    private func release(_ change: RoleChange, lease: Int64) async {
        let epoch: Int64
        switch change {
        case .fenced(let e, _, _), .resigned(let e, _): epoch = e
        default: return
        }
        let key = Data(keys.leader.utf8)
        let txn = TxnRequest(compare: [.created(key, at: epoch), .leased(key, to: lease)],
                             success: [.delete(DeleteRangeRequest(key: key))])
        do {
            _ = try await client.txn(txn, timeout: configuration.callTimeout)
            try await client.revoke(lease: lease, timeout: configuration.callTimeout)
        } catch {
            logger.warning("ha.release failed", metadata: ["ha.error": "\(error)"])
        }
    }

    /// Logs a refusal to campaign when its reason changes (once, not at every step).
    private func logRefusal(_ refusal: String?) {
        let changed = refusalLogged.withLock { logged in
            defer { logged = refusal }
            return logged != refusal
        }
        guard changed else { return }
        if let refusal {
            logger.error("ha.campaign refused: not eligible", metadata: ["ha.reason": "\(refusal)"])
        } else {
            logger.notice("ha.campaign no longer refused")
        }
    }

    private func announce(_ change: RoleChange) {
        switch change {
        case .fenced(let epoch, let reason, _):
            logger.error("ha.fenced", metadata: ["ha.epoch": "\(epoch)", "ha.reason": "\(reason)"])
        case .resigned(let epoch, let reason):
            logger.notice("ha.resigned", metadata: ["ha.epoch": "\(epoch)", "ha.reason": "\(reason)"])
        case .active(let epoch):
            logger.notice("ha.active", metadata: ["ha.epoch": "\(epoch)"])
        case .standby(let leader, let epoch):
            logger.info("ha.standby", metadata: ["ha.leader": "\(leader ?? "none")", "ha.epoch": "\(epoch ?? 0)"])
        }
        continuation.yield(change)
    }

    /// Reports a failed call to the machine, unless the task was cancelled.
    private func failed(_ call: ElectionStateMachine.Call, _ error: any Error) throws {
        try Task.checkCancellation()
        logger.info("ha.call failed", metadata: ["ha.call": "\(call)", "ha.error": "\(error)"])
        let now = clock.now
        machine.withLock { $0.callFailed(call, now: now) }
    }
}
