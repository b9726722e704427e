import Dispatch
import Foundation
import Glibc
@testable import FileStore
import Synchronization
import Testing

/// The group commit of a store without a journal: every waiter is answered once, only after a
/// round that covered what it noted; waiters that come during a round share the next one; a
/// failed round fails only the waiters it was for.
struct MetadataCommitsTests {
    /// What the rounds saw: the objects of each, and how many ran at once at most.
    final class Rounds: Sendable {
        let batches = Mutex<[[UInt64]]>([])
        let running = Atomic<Int>(0)
        let mostAtOnce = Atomic<Int>(0)
        let failNext = Atomic<Bool>(false)

        func round(_ ids: [UInt64]) throws {
            let now = running.wrappingAdd(1, ordering: .relaxed).newValue
            defer { running.wrappingSubtract(1, ordering: .relaxed) }
            mostAtOnce.max(now, ordering: .relaxed)
            usleep(20_000)  // an fsync
            batches.withLock { $0.append(ids.sorted()) }
            if failNext.exchange(false, ordering: .relaxed) { throw StoreError(.io, operation: "fsync") }
        }
    }

    @Test("32 changes from 8 threads: each answered once, after a round that had its object; far fewer rounds than changes, one at a time")
    func waitersShareRounds() async throws {
        let commits = MetadataCommits()
        let rounds = Rounds()
        let answers = Mutex<[UInt64: Int]>([:])
        let coveredWhenAnswered = Mutex<[UInt64: Bool]>([:])
        // Threads of their own (Dispatch may run all on one thread when the machine is busy).
        let finished = DispatchGroup()
        for t in 0..<8 {
            finished.enter()
            Thread {
                for n in 0..<4 {
                    let object = UInt64(1000 + t * 4 + n)
                    let point = commits.note([object, 7])
                    commits.whenDurable(through: point, round: rounds.round) { error in
                        #expect(error == nil)
                        answers.withLock { $0[object, default: 0] += 1 }
                        let covered = rounds.batches.withLock { $0.contains { $0.contains(object) } }
                        coveredWhenAnswered.withLock { $0[object] = covered }
                    }
                }
                finished.leave()
            }.start()
        }
        finished.wait()
        // A caller that waits on its thread is answered before it returns.
        try commits.makeDurable(through: commits.note([2000]), round: rounds.round)
        #expect(rounds.batches.withLock { $0.last?.contains(2000) } == true)
        #expect(answers.withLock { $0 }.count == 32 && answers.withLock { $0 }.values.allSatisfy { $0 == 1 })
        #expect(coveredWhenAnswered.withLock { $0 }.values.allSatisfy { $0 })
        let count = rounds.batches.withLock { $0.count }
        #expect(count < 25, "\(count) rounds for 33 changes")
        #expect(rounds.mostAtOnce.load(ordering: .relaxed) == 1)
        // Nothing new noted: a point already covered is answered at once, with no round.
        try commits.makeDurable(through: 1, round: rounds.round)
        #expect(rounds.batches.withLock { $0.count } == count)
    }

    @Test("a failed round fails its waiters only; the next round covers the next ones, and the objects noted again")
    func failureIsNotForever() throws {
        let commits = MetadataCommits()
        let rounds = Rounds()
        rounds.failNext.store(true, ordering: .relaxed)
        #expect(throws: StoreError.self) { try commits.makeDurable(through: commits.note([5]), round: rounds.round) }
        try commits.makeDurable(through: commits.note([5]), round: rounds.round)
        #expect(rounds.batches.withLock { $0 } == [[5], [5]])
    }
}
