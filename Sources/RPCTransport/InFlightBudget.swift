import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The bytes of calls received and not yet answered, over all connections: once they reach the
/// budget, no connection reads more until replies give some back, so a write load over many
/// connections (each allowed `maxInFlightPerConnection` calls of up to 1 MiB) is held back by
/// TCP flow control instead of by the server's memory.
public final class InFlightBudget: Sendable {
    /// Every call of every connection adds and subtracts here, on every event loop: an atomic
    /// count, not a lock that all the loops take three times a call.
    private let bytes = Atomic<Int>(0)
    /// Connections that stopped reading for want of budget, to resume when there is some.
    private let waiting = NIOLockedValueBox<[@Sendable () -> Void]>([])
    /// Whether `waiting` holds any (read without its lock by `give`).
    private let anyWaiting = Atomic<Bool>(false)
    public let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    /// Whether a connection may read another call now.
    var isAvailable: Bool { bytes.load(ordering: .relaxed) < limit }

    var used: Int { bytes.load(ordering: .relaxed) }

    /// A call of `bytes` was received (taken even beyond the limit: it is in memory already).
    func take(_ count: Int) {
        bytes.add(count, ordering: .relaxed)
    }

    /// Its reply went out.
    func give(_ count: Int) {
        let now = bytes.subtract(count, ordering: .sequentiallyConsistent).newValue
        if now < limit && anyWaiting.load(ordering: .sequentiallyConsistent) { resumeWaiting() }
    }

    /// Calls `resume` once there is budget again (at once if there is some now).
    func whenAvailable(_ resume: @escaping @Sendable () -> Void) {
        guard !isAvailable else { return resume() }
        waiting.withLockedValue {
            $0.append(resume)
            anyWaiting.store(true, ordering: .sequentiallyConsistent)
        }
        // A `give` between the check above and the append saw nobody waiting.
        if bytes.load(ordering: .sequentiallyConsistent) < limit { resumeWaiting() }
    }

    private func resumeWaiting() {
        let wake = waiting.withLockedValue { w -> [@Sendable () -> Void] in
            anyWaiting.store(false, ordering: .sequentiallyConsistent)
            defer { w = [] }
            return w
        }
        for w in wake { w() }
    }
}
