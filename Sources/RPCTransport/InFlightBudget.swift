import NIOConcurrencyHelpers
import NIOCore

/// The bytes of calls received and not yet answered, over all connections: once they reach the
/// budget, no connection reads more until replies give some back, so a write load over many
/// connections (each allowed `maxInFlightPerConnection` calls of up to 1 MiB) is held back by
/// TCP flow control instead of by the server's memory.
public final class InFlightBudget: Sendable {
    private struct State {
        var used = 0
        /// Connections that stopped reading for want of budget, to resume when there is some.
        var waiting: [@Sendable () -> Void] = []
    }
    private let state = NIOLockedValueBox(State())
    public let limit: Int

    public init(limit: Int) {
        self.limit = limit
    }

    /// Whether a connection may read another call now.
    var isAvailable: Bool { state.withLockedValue { $0.used < limit } }

    var used: Int { state.withLockedValue { $0.used } }

    /// A call of `bytes` was received (taken even beyond the limit: it is in memory already).
    func take(_ bytes: Int) {
        state.withLockedValue { $0.used += bytes }
    }

    /// Its reply went out.
    func give(_ bytes: Int) {
        let wake = state.withLockedValue { s -> [@Sendable () -> Void] in
            s.used -= bytes
            guard s.used < limit, !s.waiting.isEmpty else { return [] }
            defer { s.waiting = [] }
            return s.waiting
        }
        for w in wake { w() }
    }

    /// Calls `resume` once there is budget again (at once if there is some now).
    func whenAvailable(_ resume: @escaping @Sendable () -> Void) {
        let now = state.withLockedValue { s -> Bool in
            if s.used < limit { return true }
            s.waiting.append(resume)
            return false
        }
        if now { resume() }
    }
}
