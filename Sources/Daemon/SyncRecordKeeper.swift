import Foundation
import HA
import Journal
import Logging
import Replication
import Synchronization

/// Patroni's synchronous mode on the active of a cluster: keeps `<prefix>/sync` (`SyncRecord`)
/// naming this node and the standby that holds every record it has answered, so that only
/// those two may take over (`ElectionStateMachine` refuses to campaign otherwise), and no
/// failover loses an acknowledged write.
///
/// Two orders make it safe, whatever fails between the steps:
/// - The journal answers from itself alone (no standby in sync) only while etcd surely says
///   no standby holds everything (`JournalWriter.permitAnsweringAlone`). At a takeover it is
///   forbidden until `{self, none}` is written; when the named standby falls out of sync
///   (dropped after `replicaWait`, disconnected, lagging), answers wait until `{self, none}`
///   is written. A write that fails is tried again, answers waiting meanwhile: an active cut
///   off from etcd fences within its TTL anyway.
/// - A standby is named only once the journal waits for its acknowledgements alone (pinned,
///   `ReplicationSource.pinReplica`), answering alone is forbidden, and it holds every record
///   answered before (`ReplicationSource.replicaHoldingEveryAnswer`).
///
/// Every write compares the leader key with this leadership's epoch: an active deposed
/// meanwhile writes nothing.
final class SyncRecordKeeper: Sendable {
    private enum Named: Hashable {
        case none
        case standby(String)
    }

    private struct State {
        /// The epoch this node leads for (0: not active).
        var epoch: Int64 = 0
        /// What etcd says, or is being made to say.
        var named = Named.none
        /// Whether etcd surely says `named` (a write succeeded).
        var written = false
        /// The last write's error, while writes fail.
        var error: String?
    }

    private let configuration: HighAvailabilityConfiguration
    private let election: LeaderElection
    private let writer: JournalWriter
    private let source: ReplicationSource
    private let logger: Logger
    private let state = Mutex(State())

    /// How often the standby in sync is looked at while active.
    static let interval = Duration.milliseconds(20)

    init(configuration: HighAvailabilityConfiguration, election: LeaderElection, writer: JournalWriter, source: ReplicationSource,
         logger: Logger) {
        self.configuration = configuration
        self.election = election
        self.writer = writer
        self.source = source
        self.logger = logger
    }

    /// What `ha-status` shows while this node is the active.
    var status: String? {
        let s = state.withLock { $0 }
        guard s.epoch != 0 else { return nil }
        let named = switch s.named {
        case .none: "\(configuration.name), no sync standby"
        case .standby(let name): "\(configuration.name), sync standby \(name)"
        }
        return (s.written ? named : "being written: " + named) + (s.error.map { " (ERROR: \($0))" } ?? "")
    }

    /// The node takes over for `epoch`: nothing is answered from the journal alone until etcd
    /// says this node leads with no sync standby. Returns once it does (true), or once the node
    /// is no longer the active (false). `run` does the writing.
    func takeOver(epoch: Int64) async -> Bool {
        state.withLock {
            $0 = State(epoch: epoch)
            writer.permitAnsweringAlone(false)
            source.pinReplica(nil)
        }
        while election.activeEpoch() == epoch {
            if state.withLock({ $0.epoch == epoch && $0.written }) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// The node steps down: its journal answers as a standby's again (alone).
    func stepDown() {
        state.withLock {
            $0 = State()
            source.pinReplica(nil)
            writer.permitAnsweringAlone(true)
        }
    }

    /// Keeps the record up to date until cancelled.
    func run() async {
        while !Task.isCancelled {
            await step()
            try? await Task.sleep(for: Self.interval)
        }
    }

    private func step() async {
        let current = state.withLock { $0 }
        guard current.epoch != 0, election.activeEpoch() == current.epoch else { return }
        // The journal may have given up waiting since the replication last looked: at once,
        // not at the next acknowledgement or position.
        source.updateReplica()
        let target: Named
        switch current.named {
        case .standby(let name):
            target = source.waitedFor == name ? .standby(name) : .none
        case .none where !current.written:
            target = .none
        case .none:
            guard let candidate = source.replicaHoldingEveryAnswer, pin(candidate, epoch: current.epoch) else { return }
            target = .standby(candidate)
        }
        guard target != current.named || !current.written else { return }
        state.withLock {
            guard $0.epoch == current.epoch else { return }
            $0.named = target
            $0.written = false
        }
        await write(target, epoch: current.epoch)
    }

    /// Makes the journal wait for `candidate` alone and forbids answering alone, then checks
    /// that it still holds every record answered; if not, undoes both.
    private func pin(_ candidate: String, epoch: Int64) -> Bool {
        state.withLock {
            guard $0.epoch == epoch else { return false }
            writer.permitAnsweringAlone(false)
            source.pinReplica(candidate)
            guard source.replicaHoldingEveryAnswer == candidate else {
                source.pinReplica(nil)
                writer.permitAnsweringAlone(true)
                return false
            }
            return true
        }
    }

    private func write(_ named: Named, epoch: Int64) async {
        let standby: String? = if case .standby(let name) = named { name } else { nil }
        let record = SyncRecord(leader: configuration.name, standby: standby)
        let (keys, leader) = (configuration.keys, Data(configuration.keys.leader.utf8))
        let txn = TxnRequest(compare: [.created(leader, at: epoch)],
                             success: [.put(PutRequest(key: Data(keys.sync.utf8), value: record.jsonData()))])
        do {
            let timeout = min(configuration.etcdTimeout, max(.milliseconds(1), (election.activeUntil() ?? election.now) - election.now))
            guard try await configuration.etcd.txn(txn, timeout: timeout).succeeded == true else {
                throw EtcdError(.malformedValue, "the leader key is no longer this leadership's (epoch \(epoch))")
            }
        } catch {
            let first = state.withLock { s in
                defer { s.error = "\(error)" }
                return s.error == nil
            }
            if first {
                logger.error("ha.sync record not written; answers wait for it", metadata: [
                    "ha.sync_standby": "\(standby ?? "none")", "ha.error": "\(error)",
                ])
            }
            return
        }
        state.withLock {
            guard $0.epoch == epoch, $0.named == named else { return }
            $0.written = true
            $0.error = nil
            if named == .none {
                source.pinReplica(nil)
                writer.permitAnsweringAlone(true)
            }
        }
        logger.notice("ha.sync record written", metadata: ["ha.sync_standby": "\(standby ?? "none")", "ha.epoch": "\(epoch)"])
    }

    /// An active that does not replicate synchronously deletes the record as it takes over:
    /// no standby holds everything it answers, so none is kept from taking over (what a standby
    /// lacks is lost at a failover, as asynchronous replication accepts).
    static func delete(_ configuration: HighAvailabilityConfiguration, epoch: Int64, logger: Logger) async {
        let leader = Data(configuration.keys.leader.utf8)
        let txn = TxnRequest(compare: [.created(leader, at: epoch)], success: [.delete(DeleteRangeRequest(key: Data(configuration.keys.sync.utf8)))])
        do {
            _ = try await configuration.etcd.txn(txn, timeout: configuration.etcdTimeout)
        } catch {
            logger.error("ha.sync record not deleted; the standbys it does not name cannot take over", metadata: ["ha.error": "\(error)"])
        }
    }
}
