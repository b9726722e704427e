import Dispatch
import Glibc
import Synchronization

/// Group commit of the changes a store without a journal made on a `sync` export (RFC 1813
/// §4.7-4.8: a change other than an UNSTABLE WRITE is on stable storage before its reply;
/// knfsd does the same with commit_metadata, NFS-Ganesha's VFS backend does not). A change
/// notes the objects it touched (`note`: the directories whose entries changed, the object
/// made or changed) and waits for a point; the first waiter while no round runs leads
/// rounds, each fsyncing every object noted so far once (and the identity index), until
/// every waiter is covered. Calls that come while
/// a round runs are covered by the next one, so sixteen CREATEs in one directory cost about
/// two rounds, not sixteen fsyncs.
///
/// A failed round fails only the waiters it was to cover; the next round tries again (no
/// "failed forever").
final class MetadataCommits: Sendable {
    private struct State {
        var pending = Set<UInt64>()
        /// The point of the last note, and through which point every note is stable.
        var noted: UInt64 = 0
        var committed: UInt64 = 0
        var leading = false
        var held: [(point: UInt64, done: @Sendable (Error?) -> Void)] = []
    }

    private let state = Mutex(State())

    /// Notes objects a change touched; returns the point to wait for.
    func note(_ ids: [UInt64]) -> UInt64 {
        state.withLock { s in
            s.pending.formUnion(ids)
            s.noted += 1
            return s.noted
        }
    }

    /// Calls `done` once every note through `point` is stable, or with the error of the round
    /// that should have made it so. When no round runs, this caller runs them with `round`
    /// (which fsyncs the objects it is given), and `done` comes before this returns;
    /// otherwise the caller leading rounds calls it.
    func whenDurable(through point: UInt64, round: ([UInt64]) throws -> Void, _ done: @escaping @Sendable (Error?) -> Void) {
        enum Next { case stable, held, lead }
        let next = state.withLock { s -> Next in
            guard s.committed < point else { return .stable }
            s.held.append((point, done))
            guard !s.leading else { return .held }
            s.leading = true
            return .lead
        }
        switch next {
        case .stable: return done(nil)
        case .held: return
        case .lead: break
        }
        while true {
            let (batch, through) = state.withLock { s in
                defer { s.pending.removeAll(keepingCapacity: true) }
                return (Array(s.pending), s.noted)
            }
            var failure: Error?
            do { try round(batch) } catch { failure = error }
            let answered = state.withLock { s -> [@Sendable (Error?) -> Void] in
                if failure == nil { s.committed = max(s.committed, through) }
                let covered = s.held.filter { $0.point <= through }.map(\.done)
                s.held.removeAll { $0.point <= through }
                return covered
            }
            for d in answered { d(failure) }
            let more = state.withLock { s -> Bool in
                if s.held.isEmpty { s.leading = false }
                return s.leading
            }
            guard more else { return }
        }
    }

    /// `whenDurable` for a caller that waits on its thread.
    func makeDurable(through point: UInt64, round: ([UInt64]) throws -> Void) throws {
        let answered = DispatchSemaphore(value: 0)
        let failure = Mutex<Error?>(nil)
        whenDurable(through: point, round: round) { error in
            failure.withLock { $0 = error }
            answered.signal()
        }
        answered.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
