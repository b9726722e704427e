import FileStore
import Foundation
import HA
import Journal
import Logging
import NFS3Server
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RPCTransport
import ServiceLifecycle
import Synchronization

/// A node of a high-availability cluster serving or standing by, as its election
/// (`LeaderElection`) says. The gate of the NFS port (`RPCServingGate`): open only while this
/// node is the active for the epoch it took over, which `LeaderElection.activeEpoch()` proves
/// at each call and each reply, so a node whose lease is no longer proven answers nothing more,
/// whether or not it has heard of it yet.
///
/// Takeover (role `active`): what the old active sent served (the served trees rebuilt from
/// the durable directory where they are behind it: `LiveExports.catchUp`), the sync record
/// written (`SyncRecordKeeper`: this node, no sync standby yet), a new write verifier (clients resend what they have not seen
/// committed), the epoch into the journals, the lock grace period, the gate opened, the address
/// held and announced (gratuitous ARP), SM_NOTIFY to the clients on record, then the hook.
/// Step-down (`fenced`, `resigned`): the gate closed first, the address dropped, connections
/// closed, locks dropped, then the hook. While active, the address's kernel lifetime is renewed
/// so that it never outlasts the proven lease (see `LinuxAddressMover`).
///
/// Services stop last first: this one is listed before the election, which stops first (an
/// active resigns) and ends its role stream; this service then steps down and returns.
final class HAService: Service, RPCServingGate {
    let configuration: HighAvailabilityConfiguration
    let election: LeaderElection
    private let verifier: WriteVerifier
    private let locking: LockService
    private let exports: LiveExports
    private let durabilities: [Durability]
    /// The NFS listeners, whose connections close at a step-down (known once bound).
    private let listeners = Mutex<[RPCListener]>([])
    private let replication = Mutex<ReplicationService?>(nil)
    /// The sync record's keeper, with synchronous replication (nil: the record is deleted at a
    /// takeover).
    private let keeper = Mutex<SyncRecordKeeper?>(nil)
    private let logger: Logger
    /// The epoch this node took over and serves for; 0 while not serving.
    private let servingEpoch = Atomic<Int64>(0)
    /// From the start of a takeover to the step-down: the node follows no other.
    private let leading = Atomic<Bool>(false)
    private let state = Mutex(HAStatus())

    init(configuration: HighAvailabilityConfiguration, election: LeaderElection, verifier: WriteVerifier, locking: LockService,
         exports: LiveExports, durabilities: [Durability], logger: Logger) {
        self.configuration = configuration
        self.election = election
        self.verifier = verifier
        self.locking = locking
        self.exports = exports
        self.durabilities = durabilities
        self.logger = logger
        state.withLock {
            $0.name = configuration.name
            $0.address = configuration.address.description
            $0.hook = configuration.hook == nil ? "none" : "not run yet"
        }
    }

    // MARK: RPCServingGate

    var isOpen: Bool {
        let epoch = servingEpoch.load(ordering: .acquiring)
        return epoch != 0 && election.activeEpoch() == epoch
    }

    /// Whether this node leads or is taking over (it follows no other node then).
    var isLeading: Bool { leading.load(ordering: .acquiring) || isOpen }

    func refusesOpenly(localAddress: SocketAddress?) -> Bool {
        guard let ip = localAddress?.ipAddress, ip != "0.0.0.0", ip != "::" else { return false }
        return ip != configuration.address.ip && ip != "::ffff:" + configuration.address.ip
    }

    var status: HAStatus {
        var s = state.withLock { $0 }
        s.servedTreesBehind = durabilities.contains { $0.servedTreesBehind }
        if let replication = replication.withLock({ $0 }) {
            s.replication = replication.lines
            s.inSync = replication.inSync
            s.lagBytes = replication.lagBytes
        }
        s.sync = keeper.withLock { $0 }?.status
        s.takeoverRefusal = election.takeoverRefusal()
        return s
    }

    /// The listeners whose connections a step-down closes.
    func attach(_ bound: [RPCListener]) { listeners.withLock { $0 = bound } }

    /// The journal's replication, for the status; with synchronous replication, the sync
    /// record follows its standby in sync.
    func attach(_ replication: ReplicationService) {
        self.replication.withLock { $0 = replication }
        guard let source = replication.source, source.settings.synchronous else { return }
        keeper.withLock {
            $0 = SyncRecordKeeper(configuration: configuration, election: election, writer: replication.writer, source: source, logger: logger)
        }
    }

    // MARK: Role changes

    private enum Event {
        case role(RoleChange)
        /// Time to renew the address's lifetime.
        case tick
    }

    /// How often the address's lifetime is renewed while active: well within the shortest
    /// lifetime (1 s).
    var renewInterval: Duration { min(.milliseconds(500), configuration.ttl / 6) }

    func run() async throws {
        // A node starts as a standby: an address left by its previous run (a crash before
        // the address's lifetime ended) is not its to hold.
        do {
            try await configuration.mover.release(configuration.address)
        } catch {
            logger.error("ha.address left by an earlier run not dropped", metadata: ["ha.error": "\(error)"])
        }
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        // Hooks run one after the other, in the order of the role changes, beside the rest: a
        // slow hook never holds up the address's renewals or a step-down.
        let (hooks, hookSink) = AsyncStream.makeStream(of: (TakeoverHook.Role, Int64).self)
        async let hooksDone: Void = { for await (role, epoch) in hooks { await self.runHook(role, epoch: epoch) } }()
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                for await change in self.election.roleChanges { sink.yield(.role(change)) }
                sink.finish()
            }
            tasks.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.renewInterval)
                    sink.yield(.tick)
                }
            }
            if let keeper = keeper.withLock({ $0 }) { tasks.addTask { await keeper.run() } }
            for await event in events {
                switch event {
                case .role(.active(let epoch)):
                    // A takeover that cannot serve runs no hook (it would move the address here).
                    if await takeOver(epoch: epoch, announce: { tasks.addTask(operation: $0) }) {
                        hookSink.yield((.active, epoch))
                    }
                case .role(.fenced(let epoch, _, _)), .role(.resigned(let epoch, _)):
                    await stepDown(epoch: epoch, why: event)
                    hookSink.yield((.standby, epoch))
                case .role(.standby(let leader, let epoch)):
                    state.withLock {
                        $0.role = "standby"
                        $0.leader = leader
                        $0.epoch = epoch ?? $0.epoch
                    }
                case .tick:
                    await renewAddress()
                }
            }
            // The election ended (the stop): step down if it did not say so itself.
            let epoch = servingEpoch.load(ordering: .acquiring)
            if epoch != 0 {
                await stepDown(epoch: epoch, why: nil)
                hookSink.yield((.standby, epoch))
            }
            tasks.cancelAll()
        }
        hookSink.finish()
        await hooksDone
        // The election ends first at a stop; this service returns only once the group tells
        // it to stop too, or the group counts it as having finished unexpectedly (a race with
        // the election's own end).
        try? await gracefulShutdown()
    }

    /// Returns whether the node serves (not when its served trees could not be rebuilt).
    private func takeOver(epoch: Int64, announce: (@escaping @Sendable () async -> Void) -> Void) async -> Bool {
        let started = ContinuousClock.now
        logger.notice("ha.takeover", metadata: ["ha.epoch": "\(epoch)", "ha.address": "\(configuration.address)"])
        leading.store(true, ordering: .releasing)
        // Finish applying: what the old active sent is served before anything is answered.
        guard await catchUp() else { return false }
        // Nothing is answered before the sync record says this node leads (only it, and the
        // standby it will name, may take over after it).
        if let keeper = keeper.withLock({ $0 }) {
            guard await keeper.takeOver(epoch: epoch) else {
                logger.error("ha.takeover: no longer the active before the sync record was written", metadata: ["ha.epoch": "\(epoch)"])
                return false
            }
        } else {
            await SyncRecordKeeper.delete(configuration, epoch: epoch, logger: logger)
        }
        verifier.reset()
        for d in durabilities { d.writer.epoch.store(UInt64(epoch), ordering: .releasing) }
        locking.beginTakeover(cluster: await lockClients())
        await publishLockClients()
        servingEpoch.store(epoch, ordering: .releasing)
        state.withLock {
            $0.role = "active"
            $0.epoch = epoch
            $0.leader = configuration.name
            $0.takeovers += 1
        }
        let held = await holdAddress()
        if held {
            // Gratuitous ARP takes a moment (a few packets apart): beside the rest.
            announce { [configuration, logger] in
                do {
                    try await configuration.mover.announce(configuration.address)
                    logger.info("ha.address announced")
                } catch {
                    logger.error("ha.address not announced", metadata: ["ha.error": "\(error)"])
                }
            }
        }
        locking.announceTakeover()
        logger.notice("ha.serving", metadata: [
            "ha.epoch": "\(epoch)", "ha.address_held": "\(held)", "ha.takeover_seconds": "\(ContinuousClock.now - started)",
        ])
        return true
    }

    /// The status monitor's memory of the active before (`ClusterKeys.lockClients`): the
    /// clients that hold locks, to notify and let reclaim here. Nil when there is none or etcd
    /// does not answer (logged: those clients are then not told, as after a lost state file).
    private func lockClients() async -> [UInt8]? {
        do {
            return try await configuration.etcd.get(configuration.keys.lockClients, timeout: configuration.etcdTimeout)?.value.map { Array($0) }
        } catch {
            logger.error("ha.lock_clients not read from etcd; clients that held locks are not notified", metadata: ["ha.error": "\(error)"])
            return nil
        }
    }

    /// Puts this node's status monitor memory (the clients taken over included) in etcd, and
    /// from now on every change of it before the lock that made it is granted.
    private func publishLockClients() async {
        let (etcd, key, timeout) = (configuration.etcd, configuration.keys.lockClients, configuration.etcdTimeout)
        do {
            try await etcd.put(key, Data(locking.monitor.encoded), timeout: timeout)
        } catch {
            logger.error("ha.lock_clients not written to etcd", metadata: ["ha.error": "\(error)"])
        }
        // Called on a lock manager's thread (a thread pool's, never one of Swift's own): it
        // waits for etcd there, at most the etcd timeout.
        locking.mirrorMonitor { bytes in try Self.blocking(timeout: timeout) { try await etcd.put(key, Data(bytes), timeout: timeout) } }
    }

    /// Runs `body` and waits for it, from a thread that may wait (not one of Swift concurrency's).
    static func blocking(timeout: Duration, _ body: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let failure = NIOLockedValueBox<Error?>(nil)
        Task {
            do { try await body() } catch { failure.withLockedValue { $0 = error } }
            done.signal()
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18 + 1
        guard done.wait(timeout: .now() + seconds) == .success else {
            throw EtcdError(.unreachable, "no answer in \(timeout)")
        }
        if let error = failure.withLockedValue({ $0 }) { throw error }
    }

    /// Rebuilds the served trees that are behind what the old active replicated (see
    /// `LiveExports.catchUp`). A node that cannot must not serve: it would answer with older
    /// data, or stale handles, than the clients were given; it holds the lease without
    /// serving and says so (critical log, status) until an operator steps in.
    private func catchUp() async -> Bool {
        let started = ContinuousClock.now
        do {
            try await NIOThreadPool.singleton.runIfActive { [exports, durabilities] in try exports.catchUp(durabilities) }
            logger.notice("ha.caught_up", metadata: ["ha.catch_up_seconds": "\(ContinuousClock.now - started)"])
            state.withLock { $0.takeoverError = nil }
            return true
        } catch {
            logger.critical("ha.takeover cannot serve what the old active replicated; NOT serving", metadata: ["ha.error": "\(error)"])
            state.withLock { $0.takeoverError = "\(error)" }
            return false
        }
    }

    private func stepDown(epoch: Int64, why: Event?) async {
        servingEpoch.store(0, ordering: .releasing)
        leading.store(false, ordering: .releasing)
        keeper.withLock { $0 }?.stepDown()
        // Standing by again: it follows the new active (a journal that went on past the new
        // active's gets a full copy from it: ReplicationFollower).
        for d in durabilities { d.writer.refuseReplicated(false) }
        logger.notice("ha.step_down", metadata: ["ha.epoch": "\(epoch)", "ha.why": "\(why.map { "\($0)" } ?? "stopping")"])
        state.withLock {
            $0.role = "standby"
            $0.leader = nil
        }
        do {
            try await configuration.mover.release(configuration.address)
            state.withLock {
                $0.addressHeld = false
                $0.addressError = nil
            }
        } catch {
            logger.critical("ha.address not dropped: another node may hold it too", metadata: ["ha.error": "\(error)"])
            state.withLock { $0.addressError = "\(error)" }
        }
        for l in listeners.withLock({ $0 }) { await l.closeConnections() }
        for e in exports.current { e.export.store.discardUnstableData() }
        locking.mirrorMonitor(to: nil)
        locking.stepDown()
    }

    /// Holds the address for as long as the lease is proven; returns whether it is held.
    @discardableResult
    private func holdAddress() async -> Bool {
        guard let until = election.activeUntil() else { return false }
        let lifetime = until - election.now
        do {
            let added = try await configuration.mover.hold(configuration.address, lifetime: lifetime)
            // Dropped again meanwhile? Then it is not ours to hold.
            guard servingEpoch.load(ordering: .acquiring) != 0 else {
                try? await configuration.mover.release(configuration.address)
                return false
            }
            let wasHeld = state.withLock { s in
                defer {
                    s.addressHeld = true
                    s.addressError = nil
                }
                return s.addressHeld
            }
            if added && wasHeld {
                logger.error("ha.address had expired while active (renewals late?); added again")
            }
            return true
        } catch {
            logger.critical("ha.address not held: clients cannot reach this active", metadata: ["ha.error": "\(error)"])
            state.withLock {
                $0.addressHeld = false
                $0.addressError = "\(error)"
            }
            return false
        }
    }

    private func renewAddress() async {
        guard servingEpoch.load(ordering: .acquiring) != 0 else { return }
        let wasHeld = state.withLock { $0.addressHeld }
        if await holdAddress(), !wasHeld {
            try? await configuration.mover.announce(configuration.address)
        }
    }

    private func runHook(_ role: TakeoverHook.Role, epoch: Int64) async {
        guard let hook = configuration.hook else { return }
        let result: String
        do {
            let outcome = try await hook.run(role: role, address: configuration.address, name: configuration.name, epoch: epoch)
            if outcome.succeeded {
                logger.notice("ha.hook ran", metadata: ["ha.role": "\(role)", "ha.hook": "\(outcome)"])
                result = "\(role): ok (\(outcome.duration))"
            } else {
                logger.critical("ha.hook FAILED; the node goes on", metadata: ["ha.role": "\(role)", "ha.hook": "\(outcome)"])
                result = "\(role): FAILED, \(outcome)"
            }
        } catch {
            logger.critical("ha.hook could not run", metadata: ["ha.role": "\(role)", "ha.error": "\(error)"])
            result = "\(role): FAILED, could not run: \(error)"
        }
        state.withLock {
            $0.hook = result
            if !result.contains(": ok") { $0.hookFailures += 1 }
        }
    }
}

/// What `swiftnfsd status` and `/metrics` show of a cluster node.
struct HAStatus: Sendable {
    var name = ""
    var role = "standby"
    var epoch: Int64?
    var leader: String?
    var address = ""
    var addressHeld = false
    var addressError: String?
    var takeovers = 0
    /// Why the last takeover could not serve (its served trees not rebuilt), if it could not.
    var takeoverError: String?
    /// The served trees lack records received from an active (a takeover rebuilds them).
    var servedTreesBehind = false
    var hook = "none"
    var hookFailures = 0
    /// The active: some standby holds what it has; a standby: it holds what the active has.
    var inSync = false
    var lagBytes: UInt64 = 0
    /// One line per standby (the active) or for the active followed (a standby); nil without
    /// replication (`--ha-replication-port`).
    var replication: [String]?
    /// The sync record as this node keeps it (synchronous replication only).
    var sync: String?
    /// Why this node may not take over, while it may not.
    var takeoverRefusal: String?

    /// The control socket's `ha-status` answer: one "key: value" a line.
    var text: String {
        var lines = [
            "node: \(name)",
            "role: \(role)",
            "epoch: \(epoch.map(String.init) ?? "none")",
            "leader: \(leader ?? "unknown")",
            "address: \(address) \(addressHeld ? "held" : "not held")" + (addressError.map { " (ERROR: \($0))" } ?? ""),
            "takeovers: \(takeovers)" + (takeoverError.map { " (LAST FAILED, not serving: \($0))" } ?? ""),
            "hook: \(hook)",
            "served trees: " + (servedTreesBehind ? "behind the replicated journal (a takeover rebuilds them from the durable directory)"
                : "up to date with the journal"),
        ]
        if let replication {
            lines.append("in sync: \(inSync) (lag \(lagBytes) bytes)")
            lines += replication.map { "replication: " + $0 }
        } else {
            lines.append("in sync: false (no replication: --ha-replication-port not given)")
        }
        if let sync { lines.append("sync record: \(sync)") }
        if role != "active" { lines.append("takeover: " + (takeoverRefusal.map { "not eligible: \($0)" } ?? "eligible")) }
        if hookFailures > 0 { lines.append("hook failures: \(hookFailures)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
