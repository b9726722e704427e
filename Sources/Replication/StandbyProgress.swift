/// What an active knows of one standby that follows its journal: what it was sent, what it
/// acknowledged as durable, how many bytes it lacks, and whether it is in sync. No I/O; the
/// time is given.
///
/// Lag: the bytes of the frames sent and not yet acknowledged, plus those appended and not yet
/// sent (queued for it). While the standby catches up from the segments, the part of the
/// journal not read yet is not counted, and the standby is not in sync.
///
/// In sync: it follows the live appends (caught up), it acknowledged within `ackWindow`, it
/// lacks at most `maxLagBytes`, and synchronous replication has not given up waiting for it
/// since it last acknowledged everything it was sent.
package struct StandbyProgress: Sendable {
    package struct Policy: Sendable {
        package var ackWindow: Duration = .seconds(1)
        package var maxLagBytes: UInt64 = 8 << 20
        package init() {}
    }

    package let name: String
    let policy: Policy
    /// Following the live appends (the catch-up from the segments is done).
    package private(set) var caughtUp = false
    /// The highest sequence the standby has on stable storage.
    package private(set) var acknowledged: UInt64
    private var sentBytes: UInt64 = 0
    private var acknowledgedBytes: UInt64 = 0
    /// Frames sent and not acknowledged: their sequence and `sentBytes` once each was sent.
    private var inFlight: [(sequence: UInt64, through: UInt64)] = []
    private var lastAck: ContinuousClock.Instant?
    /// Kept a caller waiting too long in synchronous mode: not in sync again until it has
    /// acknowledged everything it was sent.
    package private(set) var dropped = false
    /// Receiving a full copy (`fullCopyStarted`): its ACKs are of its old history until it
    /// says the copy is installed, and are not counted.
    package private(set) var copying = false

    package init(name: String, after: UInt64, policy: Policy = Policy()) {
        self.name = name
        self.policy = policy
        acknowledged = after
    }

    package mutating func sent(sequence: UInt64, bytes: Int) {
        sentBytes += UInt64(bytes)
        inFlight.append((sequence, sentBytes))
    }

    package mutating func acknowledged(_ durable: UInt64, at now: ContinuousClock.Instant) {
        lastAck = now
        // Never more than was sent: a standby's claim to hold records it was not sent (another
        // history) must not answer a caller of this journal.
        let durable = min(durable, inFlight.last?.sequence ?? acknowledged)
        guard !copying, durable > acknowledged else { return }
        acknowledged = durable
        let covered = inFlight.prefix { $0.sequence <= durable }
        if let last = covered.last { acknowledgedBytes = last.through }
        inFlight.removeFirst(covered.count)
        if !covered.isEmpty && inFlight.isEmpty { dropped = false }
    }

    /// Synchronous replication gave up waiting for it (see `dropped`).
    package mutating func drop() { dropped = true }

    package mutating func caughtUp(_ value: Bool) { caughtUp = value }

    /// A full copy starts: what was sent before no longer counts.
    package mutating func fullCopyStarted() {
        copying = true
        caughtUp = false
        inFlight = []
        sentBytes = 0
        acknowledgedBytes = 0
    }

    /// The standby installed the full copy of the checkpoint at `sequence`: it holds every
    /// record through it, and its ACKs count again.
    package mutating func fullCopyInstalled(_ sequence: UInt64) {
        copying = false
        acknowledged = sequence
        let covered = inFlight.prefix { $0.sequence <= sequence }
        if let last = covered.last { acknowledgedBytes = last.through }
        inFlight.removeFirst(covered.count)
    }

    /// The bytes it lacks, `queued` of them appended and not sent yet.
    package func lagBytes(queued: Int) -> UInt64 { sentBytes - acknowledgedBytes + UInt64(queued) }

    package func inSync(at now: ContinuousClock.Instant, queued: Int) -> Bool {
        guard caughtUp, !dropped, let lastAck else { return false }
        return now - lastAck <= policy.ackWindow && lagBytes(queued: queued) <= policy.maxLagBytes
    }
}

/// One standby as the active reports it (status, metrics).
package struct StandbyStatus: Sendable, Hashable {
    package var name: String
    package var acknowledged: UInt64
    package var lagBytes: UInt64
    package var inSync: Bool
    package var caughtUp: Bool
    /// Being sent a full copy.
    package var copying = false
}
