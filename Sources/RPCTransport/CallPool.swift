import Glibc
import NIOCore
import NIOPosix

/// Where the transport runs the calls that may block (`RPCProcedureTraits.isBlocking`).
public protocol RPCCallExecutor: Sendable {
    /// Runs `body` on a thread of the executor: with true, or with false when the executor is
    /// stopping and will not run it (the caller answers SYSTEM_ERR).
    func run(_ body: @escaping @Sendable (_ active: Bool) -> Void)
}

extension NIOThreadPool: RPCCallExecutor {
    public func run(_ body: @escaping @Sendable (Bool) -> Void) {
        submit { state in body(state == .active) }
    }
}

/// A pool of threads for blocking calls that wakes a sleeping thread only when the calls need
/// one. `NIOThreadPool` wakes a thread for every call submitted: sixteen calls that arrive
/// together wake sixteen threads on a machine of two cores, and the wake-ups (a futex wake by
/// the event loop, a context switch in, a futex wait out) cost more CPU than a small WRITE.
///
/// Here at most `awakeLimit` threads (the cores) take calls off the queue while none of them
/// is stuck; a thread that finishes a call takes the next one without sleeping. Calls that
/// block for long (a read from a slow disk, an fsync) must not hold the queue back meanwhile:
/// a watchdog looks at the threads every `stuckAfter` while calls wait, counts those that have
/// been in one call for longer as stuck, and wakes another thread for each, up to `threads`.
/// Calls run in the order they came.
public final class CallPool: RPCCallExecutor, @unchecked Sendable {
    /// The threads; this many calls can block at once.
    public let threads: Int
    /// Threads taking calls at once while none is stuck.
    public let awakeLimit: Int
    /// How long a thread may be in one call before it counts as stuck (blocked, not computing).
    public let stuckAfter: Duration

    private struct Item {
        var body: @Sendable (Bool) -> Void
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// One condition per worker (a wake-up goes to the one chosen), and the watchdog's last.
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    // Everything below is guarded by `mutex`.
    /// Calls waiting, from `head` on (taken slots are nil: what a call holds is freed as it runs).
    private var queue: [Item?] = []
    private var head = 0
    /// Sleeping workers, the most recently active last (woken first: its cache is warm).
    private var idle: [Int] = []
    /// Per worker: told to wake up.
    private var woken: [Bool]
    /// Per worker: when it began its current call (monotonic ns), 0 while between calls.
    private var busySince: [UInt64]
    /// Workers not sleeping (in a call, or about to look at the queue).
    private var awake = 0
    private var watchdogWaiting = false
    private var stopping = false
    private var started: [pthread_t] = []
    private let name: String

    /// - Parameters:
    ///   - threads: at least 1.
    ///   - awakeLimit: default: the cores.
    ///   - stuckAfter: a call that computes takes microseconds; one that waits for a disk, far longer.
    public init(threads: Int, awakeLimit: Int = System.coreCount, stuckAfter: Duration = .microseconds(250), name: String = "pool") {
        self.threads = max(1, threads)
        self.awakeLimit = max(1, min(awakeLimit, self.threads))
        self.stuckAfter = stuckAfter
        self.name = name
        conditions = .allocate(capacity: self.threads + 1)
        woken = Array(repeating: false, count: self.threads)
        busySince = Array(repeating: 0, count: self.threads)
        // Adaptive: the event loop and a worker that finishes a call take the lock for a few
        // instructions each, so a contender spins a moment instead of sleeping on a futex.
        var mutexAttributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&mutexAttributes)
        pthread_mutexattr_settype(&mutexAttributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(mutex, &mutexAttributes)
        pthread_mutexattr_destroy(&mutexAttributes)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        for i in 0...self.threads { pthread_cond_init(conditions + i, &attributes) }
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        for i in 0...threads { pthread_cond_destroy(conditions + i) }
        pthread_mutex_destroy(mutex)
        conditions.deallocate()
        mutex.deallocate()
    }

    /// Starts the threads (all awake at first; they sleep once the queue is empty).
    public func start() {
        pthread_mutex_lock(mutex)
        awake = threads
        pthread_mutex_unlock(mutex)
        for i in 0...threads {
            let box = Unmanaged.passRetained(Start(pool: self, index: i))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
                start.pool.main(start.index)
                return nil
            }, box.toOpaque())
            precondition(rc == 0, "pthread_create: \(rc)")
            started.append(thread)
        }
    }

    private final class Start {
        let pool: CallPool
        let index: Int
        init(pool: CallPool, index: Int) { self.pool = pool; self.index = index }
    }

    public func run(_ body: @escaping @Sendable (Bool) -> Void) {
        pthread_mutex_lock(mutex)
        guard !stopping, !started.isEmpty else {
            pthread_mutex_unlock(mutex)
            return body(false)
        }
        queue.append(Item(body: body))
        if awake < awakeLimit, !idle.isEmpty {
            wakeOne()
        } else if watchdogWaiting {
            // Calls wait: the watchdog looks after them from now on.
            watchdogWaiting = false
            pthread_cond_signal(conditions + threads)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Stops taking calls; those still queued are run with false. Returns once every thread is gone.
    public func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        for i in 0...threads { pthread_cond_signal(conditions + i) }
        let joined = started
        started = []
        pthread_mutex_unlock(mutex)
        for t in joined { pthread_join(t, nil) }
    }

    /// `shutdown` off the caller's thread (it waits for calls in progress).
    public func shutdownGracefully() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let box = Unmanaged.passRetained(Stopper(pool: self, done: done))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let stopper = Unmanaged<Stopper>.fromOpaque(raw!).takeRetainedValue()
                stopper.pool.shutdown()
                stopper.done.resume()
                return nil
            }, box.toOpaque())
            if rc == 0 {
                pthread_detach(thread)
            } else {
                box.release()
                shutdown()
                done.resume()
            }
        }
    }

    private final class Stopper {
        let pool: CallPool
        let done: CheckedContinuation<Void, Never>
        init(pool: CallPool, done: CheckedContinuation<Void, Never>) { self.pool = pool; self.done = done }
    }

    // MARK: - Threads (the mutex is held where a function says so)

    private func main(_ index: Int) {
        Self.nameThread("\(name)-#\(index == threads ? "w" : "\(index)")")
        if index == threads { return watchdog() }
        pthread_mutex_lock(mutex)
        while !stopping {
            if let item = pop() {
                busySince[index] = Self.now()
                pthread_mutex_unlock(mutex)
                item.body(true)
                pthread_mutex_lock(mutex)
                busySince[index] = 0
                continue
            }
            // Nothing to do: sleep until chosen.
            awake -= 1
            idle.append(index)
            while !woken[index] && !stopping { pthread_cond_wait(conditions + index, mutex) }
            if woken[index] {
                woken[index] = false
            } else {
                idle.removeAll { $0 == index }
                awake += 1
            }
        }
        // Stopping: what is still queued is refused.
        while let item = pop() {
            pthread_mutex_unlock(mutex)
            item.body(false)
            pthread_mutex_lock(mutex)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Wakes calls' threads while calls wait and the awake threads are stuck in theirs.
    private func watchdog() {
        let period = UInt64(stuckAfter.components.seconds) * 1_000_000_000 + UInt64(stuckAfter.components.attoseconds / 1_000_000_000)
        pthread_mutex_lock(mutex)
        while !stopping {
            guard head < queue.count else {
                watchdogWaiting = true
                pthread_cond_wait(conditions + threads, mutex)
                watchdogWaiting = false
                continue
            }
            let now = Self.now()
            let stuck = busySince.reduce(0) { $0 + ($1 != 0 && now &- $1 >= period ? 1 : 0) }
            var wanted = min(awakeLimit - (awake - stuck), queue.count - head)
            while wanted > 0, !idle.isEmpty {
                wakeOne()
                wanted -= 1
            }
            var deadline = timespec()
            let at = now + period
            deadline.tv_sec = Int(at / 1_000_000_000)
            deadline.tv_nsec = Int(at % 1_000_000_000)
            pthread_cond_timedwait(conditions + threads, mutex, &deadline)
        }
        pthread_mutex_unlock(mutex)
    }

    /// The mutex held.
    private func wakeOne() {
        let i = idle.removeLast()
        woken[i] = true
        awake += 1
        pthread_cond_signal(conditions + i)
    }

    /// The mutex held.
    private func pop() -> Item? {
        guard head < queue.count else { return nil }
        let item = queue[head]
        queue[head] = nil
        head += 1
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= queue.count {
            queue.removeFirst(head)
            head = 0
        }
        return item
    }

    /// Names the calling thread (what `ps -L`, perf and the bench's per-thread CPU show).
    static func nameThread(_ name: String) {
        let fd = open("/proc/thread-self/comm", O_WRONLY)
        guard fd >= 0 else { return }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
