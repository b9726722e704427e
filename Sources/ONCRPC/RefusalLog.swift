import NIOConcurrencyHelpers
import NIOCore

/// Logs each kind of refusal once per client and reason, then at most once a minute, so a
/// misconfigured or hostile client cannot flood the log.
public final class RefusalLog: Sendable {
    private let seen = NIOLockedValueBox<[String: NIODeadline]>([:])
    private let interval: TimeAmount

    public init(interval: TimeAmount = .seconds(60)) {
        self.interval = interval
    }

    /// True when this refusal should be logged now.
    public func shouldLog(_ key: String) -> Bool {
        let now = NIODeadline.now()
        return seen.withLockedValue { s in
            if let last = s[key], now - last < interval { return false }
            if s.count > 10_000 { s.removeAll() }
            s[key] = now
            return true
        }
    }
}
