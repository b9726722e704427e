import Glibc

/// The time the server's timed work goes by (write-back delays, flush and checkpoint
/// intervals): the system's monotonic clock, or in tests a clock they move themselves.
package protocol ServerClock: Sendable {
    /// Monotonic time since an arbitrary origin.
    var now: Duration { get }
    /// Returns once `duration` has passed on this clock; throws if the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// CLOCK_MONOTONIC.
package struct SystemClock: ServerClock {
    package init() {}

    package var now: Duration {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
    }

    package func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }
}
