import CoreMetrics
import Foundation
import Journal
import NIOConcurrencyHelpers
import ONCRPC
import Replication
import RPCTransport

/// The metrics that describe a state (journal size, connections open) or that other parts
/// count themselves (duplicate request cache hits, journal failures): read at each scrape of
/// `/metrics` and handed to swift-metrics then.
final class StateMetrics: Sendable {
    private struct JournalGauges {
        let durability: Durability
        let uncheckpointed, limit, unsynced, segments, heldBack, degraded, checkpointAge: Gauge
        let errors, syncs: Counter
    }

    private let journals: [JournalGauges]
    private let listeners: [(RPCListener, Gauge)]
    /// Calls by event loop of the NFS listener, and by where they ran (`ran` = event_loop or
    /// pool): whether connections spread over the cores.
    private let loopCalls: EventLoopCallCounts?
    private let loopCounters = NIOLockedValueBox<[Int: LoopCounters]>([:])
    private let cache: DuplicateRequestCache
    private let cacheHits = Counter(label: "rpc_duplicate_request_cache_hits_total")
    private let writeBack = Gauge(label: "journal_write_back_bytes")
    private let exports: LiveExports
    private let locking: LockService?
    private let locksHeld = Gauge(label: "nlm_locks")
    private let blocked = Gauge(label: "nlm_blocked_requests")
    private let grace = Gauge(label: "nlm_grace_period")
    private let callbackFailures = Counter(label: "nlm_callbacks_failed_total")
    private let ha: HAService?
    /// A cluster node: 1 while the active; its epoch; whether it holds the service address;
    /// whether a standby holds all the active has (on the active: some standby is in sync; on a
    /// standby: it is); whether it may take over (the sync record names it, or there is none);
    /// takeovers and failed hooks since the start.
    private let haGauges = (active: Gauge(label: "ha_active"), epoch: Gauge(label: "ha_epoch"),
                            addressHeld: Gauge(label: "ha_address_held"), inSync: Gauge(label: "ha_standby_in_sync"),
                            eligible: Gauge(label: "ha_takeover_eligible"),
                            takeovers: Gauge(label: "ha_takeovers"), hookFailures: Gauge(label: "ha_hook_failures"))
    private let replication: ReplicationService?
    /// The journal's replication: the largest lag of a standby (on the active) or this standby's,
    /// the standbys connected to this node, the bytes of the full copy a standby is receiving
    /// (0: none), and the full copies sent or installed since the start.
    private let replicationGauges = (lag: Gauge(label: "ha_replication_lag_bytes"), standbys: Gauge(label: "ha_replication_standbys"),
                                     fullCopyBytes: Gauge(label: "ha_full_copy_bytes"), fullCopies: Gauge(label: "ha_full_copies"))
    /// What the counters showed at the last scrape (counters only go up by the difference).
    private let seen = NIOLockedValueBox<(hits: Int, failures: [Int], syncs: [Int], callbacks: Int)>((0, [], [], 0))

    init(durabilities: [Durability], listeners: [(String, RPCListener)], cache: DuplicateRequestCache, exports: LiveExports,
         locking: LockService? = nil, ha: HAService? = nil, replication: ReplicationService? = nil) {
        self.locking = locking
        self.ha = ha
        self.replication = replication
        journals = durabilities.map { d in
            let dims = [("directory", d.settings.directory)]
            func gauge(_ label: String) -> Gauge { Gauge(label: label, dimensions: dims) }
            return JournalGauges(
                durability: d, uncheckpointed: gauge("journal_uncheckpointed_bytes"), limit: gauge("journal_limit_bytes"),
                unsynced: gauge("journal_unsynced_bytes"), segments: gauge("journal_segments"),
                heldBack: gauge("journal_held_back_changes"), degraded: gauge("journal_degraded"),
                checkpointAge: gauge("journal_checkpoint_age_seconds"),
                errors: Counter(label: "journal_durable_errors_total", dimensions: dims),
                syncs: Counter(label: "journal_fsyncs_total", dimensions: dims))
        }
        self.listeners = listeners.map { ($0.1, Gauge(label: "rpc_connections", dimensions: [("listener", $0.0)])) }
        loopCalls = listeners.first { $0.0 == "nfs" }?.1.calls
        self.cache = cache
        self.exports = exports
        seen.withLockedValue {
            $0.failures = Array(repeating: 0, count: durabilities.count)
            $0.syncs = $0.failures
        }
    }

    func collect() {
        for (listener, gauge) in listeners { gauge.record(listener.openConnections) }
        collectLoopCalls()
        writeBack.record(Int64(exports.current.reduce(0) { $0 + $1.export.store.writeBackBytes }))
        let hits = cache.hits
        var failures: [Int] = []
        var syncs: [Int] = []
        for j in journals {
            let s = j.durability.writer.status
            j.uncheckpointed.record(s.uncheckpointedBytes)
            j.limit.record(j.durability.settings.limits.maxUncheckpointedBytes)
            j.unsynced.record(s.unsyncedBytes)
            j.segments.record(j.durability.directory.segments().count)
            j.heldBack.record(s.waitingForRoom)
            let (time, checkpointError) = j.durability.checkpointer.lastResult
            j.degraded.record(Durability.degraded(s, checkpointError: checkpointError) != nil ? 1 : 0)
            if time > 0 { j.checkpointAge.record(max(0, Date().timeIntervalSince1970 - time)) }
            failures.append(s.failures)
            syncs.append(s.syncs)
        }
        let callbacks = locking?.peers.failures ?? 0
        if let locking {
            locksHeld.record(locking.locks.table.count)
            blocked.record(locking.locks.waiting)
            grace.record(locking.grace.isActive ? 1 : 0)
        }
        if let status = ha?.status {
            haGauges.active.record(status.role == "active" ? 1 : 0)
            haGauges.epoch.record(status.epoch ?? 0)
            haGauges.addressHeld.record(status.addressHeld ? 1 : 0)
            haGauges.inSync.record(status.inSync ? 1 : 0)
            haGauges.eligible.record(status.takeoverRefusal == nil ? 1 : 0)
            haGauges.takeovers.record(status.takeovers)
            haGauges.hookFailures.record(status.hookFailures)
        }
        if let replication {
            replicationGauges.lag.record(Int64(clamping: replication.lagBytes))
            replicationGauges.standbys.record(replication.source?.status.count ?? 0)
            replicationGauges.fullCopyBytes.record(Int64(clamping: replication.fullCopyBytes))
            replicationGauges.fullCopies.record(replication.fullCopies)
            if ha == nil { haGauges.inSync.record(replication.inSync ? 1 : 0) }
        }
        let before = seen.withLockedValue { before in
            defer { before = (hits, failures, syncs, callbacks) }
            return before
        }
        if hits > before.hits { cacheHits.increment(by: hits - before.hits) }
        if callbacks > before.callbacks { callbackFailures.increment(by: callbacks - before.callbacks) }
        for (i, j) in journals.enumerated() {
            if failures[i] > before.failures[i] { j.errors.increment(by: failures[i] - before.failures[i]) }
            if syncs[i] > before.syncs[i] { j.syncs.increment(by: syncs[i] - before.syncs[i]) }
        }
    }
}

extension StateMetrics {
    /// `rpc_calls_total{event_loop,ran}`: what each loop received since the last scrape.
    private func collectLoopCalls() {
        guard let loopCalls else { return }
        for loop in loopCalls.loops {
            loopCounters.withLockedValue { counters in
                let dims = [("event_loop", "\(loop.index)")]
                var c = counters[loop.index] ?? LoopCounters(
                    onLoop: Counter(label: "rpc_calls_total", dimensions: dims + [("ran", "event_loop")]),
                    handedOff: Counter(label: "rpc_calls_total", dimensions: dims + [("ran", "pool")]))
                // A call is counted as received before it is handed off: the first total may
                // run ahead for a moment, never behind.
                let onLoop = loop.received - loop.handedOff
                if onLoop > c.onLoopReported { c.onLoop.increment(by: onLoop - c.onLoopReported); c.onLoopReported = onLoop }
                if loop.handedOff > c.handedOffReported {
                    c.handedOff.increment(by: loop.handedOff - c.handedOffReported)
                    c.handedOffReported = loop.handedOff
                }
                counters[loop.index] = c
            }
        }
    }
}

/// One event loop's `rpc_calls_total` counters, and what they have been given.
struct LoopCounters {
    let onLoop: Counter
    let handedOff: Counter
    var onLoopReported = 0
    var handedOffReported = 0
}
