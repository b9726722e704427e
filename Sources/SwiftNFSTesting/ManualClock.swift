import FileStore
import NIOConcurrencyHelpers

/// A clock that moves only when a test says (`advance(by:)`): the server's timed work (the
/// write-back delay, flush and checkpoint intervals) runs when the test wants, without waiting.
package final class ManualClock: ServerClock {
    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Duration = .zero
        var sleepers: [Int: Sleeper] = [:]
        var nextID = 0
    }

    private let state = NIOLockedValueBox(State())

    package init() {}

    package var now: Duration { state.withLockedValue { $0.now } }

    /// Moves the clock on and wakes every sleep that is over.
    package func advance(by duration: Duration) {
        let woken = state.withLockedValue { s -> [CheckedContinuation<Void, any Error>] in
            s.now += duration
            let over = s.sleepers.filter { $0.value.deadline <= s.now }
            for id in over.keys { s.sleepers[id] = nil }
            return over.values.map(\.continuation)
        }
        for c in woken { c.resume() }
    }

    package func sleep(for duration: Duration) async throws {
        let id = state.withLockedValue { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow: Bool = state.withLockedValue { s in
                    if Task.isCancelled || duration <= .zero { return true }
                    s.sleepers[id] = Sleeper(deadline: s.now + duration, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            try Task.checkCancellation()
        } onCancel: {
            let sleeper = state.withLockedValue { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}
