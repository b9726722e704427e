import Glibc

/// A mutex with condition variables, for the journal's group commit (callers are blocking
/// pool threads waiting for an fsync that another caller is doing for all of them).
///
/// Waiters wait for one `Event` and are woken only by it: a thread waiting for an fsync is
/// not woken by every append, and one waiting for room not by every fsync waiter's wake-up
/// (with one condition variable, sixteen callers woke each other on every append and spent
/// more CPU on futexes than on the changes).
final class Condition: @unchecked Sendable {
    enum Event: Int, CaseIterable {
        /// The general event (the only one of a user that needs no other).
        case changed
        /// Room in the journal (fsyncs done, room given back, checkpoints).
        case room
        /// The record before a waiting append reached the segment.
        case order
        /// An fsync finished.
        case durable
        /// A change admitted with room appended (or failed) and gave the room back.
        case appended
        /// The next segment is wanted, or was prepared (`JournalWriter`'s spare).
        case spare
        /// A standby acknowledged records, or synchronous replication stopped (`JournalWriter.replicate`).
        case replicated
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conds = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: Event.allCases.count)

    init() {
        pthread_mutex_init(mutex, nil)
        for i in 0..<Event.allCases.count { pthread_cond_init(conds + i, nil) }
    }

    deinit {
        for i in 0..<Event.allCases.count { pthread_cond_destroy(conds + i) }
        pthread_mutex_destroy(mutex)
        conds.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for `event` (the lock held on entry and on return).
    func wait(for event: Event = .changed) { pthread_cond_wait(conds + event.rawValue, mutex) }
    /// Waits for `event` at most `seconds`.
    func wait(for event: Event = .changed, seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 + seconds
        var deadline = timespec(tv_sec: Int(total), tv_nsec: Int((total - Double(Int(total))) * 1e9))
        pthread_cond_timedwait(conds + event.rawValue, mutex, &deadline)
    }
    /// Wakes every waiter of `event`.
    func broadcast(_ event: Event = .changed) { pthread_cond_broadcast(conds + event.rawValue) }
    /// Wakes every waiter, whatever it waits for.
    func broadcastAll() {
        for i in 0..<Event.allCases.count { pthread_cond_broadcast(conds + i) }
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
