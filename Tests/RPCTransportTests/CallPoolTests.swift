import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import RPCTransport

@Suite struct CallPoolTests {
    /// Runs `count` calls on `pool` and waits for all of them; returns what each was given and
    /// the order they ran in.
    func runAll(_ pool: CallPool, count: Int) -> (active: [Bool], order: [Int]) {
        let done = DispatchSemaphore(value: 0)
        let seen = NIOLockedValueBox<(active: [Bool], order: [Int])>(([], []))
        for i in 0..<count {
            pool.run { active in
                seen.withLockedValue { $0.active.append(active); $0.order.append(i) }
                done.signal()
            }
        }
        for _ in 0..<count { done.wait() }
        return seen.withLockedValue { $0 }
    }

    @Test func runsEveryCallInTheOrderTheyCameOnOneThread() async {
        let pool = CallPool(threads: 1, awakeLimit: 1)
        pool.start()
        let (active, order) = runAll(pool, count: 500)
        #expect(active.allSatisfy { $0 })
        #expect(order == Array(0..<500))
        await pool.shutdownGracefully()
    }

    @Test func manyThreadsRunEveryCall() async {
        let pool = CallPool(threads: 16, awakeLimit: 2)
        pool.start()
        let (active, order) = runAll(pool, count: 2000)
        #expect(active.count == 2000 && active.allSatisfy { $0 })
        #expect(Set(order).count == 2000)
        await pool.shutdownGracefully()
    }

    /// One awake thread, blocked in its call: the watchdog wakes another for the call queued
    /// behind it, which runs while the first still waits.
    @Test func aStuckCallDoesNotHoldBackTheCallsBehindIt() async {
        let pool = CallPool(threads: 4, awakeLimit: 1, stuckAfter: .milliseconds(1))
        pool.start()
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        pool.run { _ in
            started.signal()
            release.wait()
        }
        started.wait()
        let ran = DispatchSemaphore(value: 0)
        pool.run { _ in ran.signal() }
        // Generous: only a pool that never wakes another thread fails this.
        #expect(ran.wait(timeout: .now() + 30) == .success)
        release.signal()
        await pool.shutdownGracefully()
    }

    @Test func refusesCallsWhenNotStartedOrStopped() async {
        let unstarted = CallPool(threads: 2)
        #expect(runAll(unstarted, count: 1).active == [false])
        let pool = CallPool(threads: 2)
        pool.start()
        #expect(runAll(pool, count: 1).active == [true])
        await pool.shutdownGracefully()
        #expect(runAll(pool, count: 1).active == [false])
    }
}
