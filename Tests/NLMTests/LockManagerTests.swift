import Locking
import NIOConcurrencyHelpers
import NIOCore
import ONCRPC
import Testing
@testable import NLM

/// The lock manager's queue of blocked requests (the range logic itself: LockTableTests).
@Suite struct LockManagerTests {
    let file = LockFile(export: 1, file: 42)
    let a = LockOwner(host: "a", address: "10.0.0.1", handle: [1], process: 1)
    let b = LockOwner(host: "b", address: "10.0.0.2", handle: [2], process: 2)
    let c = LockOwner(host: "c", address: "10.0.0.3", handle: [3], process: 3)

    func request(_ owner: LockOwner, _ start: UInt64 = 0, _ end: UInt64 = 100, exclusive: Bool = true) -> LockRequest {
        LockRequest(file: file, owner: owner, exclusive: exclusive, range: LockRange(start: start, end: end))
    }

    func notice(_ owner: LockOwner) throws -> GrantNotice {
        GrantNotice(lock: NLMLock(callerName: owner.host, fileHandle: [9], ownerHandle: owner.handle, svid: owner.process,
                                  offset: 0, length: 100),
                    exclusive: true, version: 4, transport: .tcp, client: try SocketAddress(ipAddress: owner.address, port: 0),
                    server: nil, asynchronous: false)
    }

    /// The grants announced so far (the stream is read without waiting past what is there).
    func drain(_ m: LockManager, _ expected: Int) async -> [Grant] {
        var out: [Grant] = []
        var it = m.grants.makeAsyncIterator()
        while out.count < expected, let g = await it.next() { out.append(g) }
        return out
    }

    @Test("a blocked request is granted when the holder unlocks, in the order the waiters came")
    func waitersInOrder() async throws {
        let m = LockManager()
        #expect(m.lock(request(a)) == .granted)
        #expect(m.lock(request(b), blockingWith: try notice(b)) == .blocked)
        #expect(m.lock(request(c), blockingWith: try notice(c)) == .blocked)
        // Asked again (the Linux client does, every 30 s): still one waiter.
        #expect(m.lock(request(b), blockingWith: try notice(b)) == .blocked)
        #expect(m.waiting == 2)
        m.unlock(request(a))
        let first = await drain(m, 1)
        #expect(first.map(\.request.owner) == [b])
        #expect(m.test(request(a)) == FileLock(owner: b, exclusive: true, range: LockRange(start: 0, end: 100)))
        m.confirm(first[0].id, accepted: true)
        m.unlock(request(b))
        #expect(await drain(m, 1).map(\.request.owner) == [c])
        #expect(m.waiting == 0)
    }

    @Test("a client that answers GRANTED with denied gives the lock back, and the next waiter gets it")
    func refusedGrantGoesBack() async throws {
        let m = LockManager()
        _ = m.lock(request(a))
        _ = m.lock(request(b), blockingWith: try notice(b))
        _ = m.lock(request(c), blockingWith: try notice(c))
        m.unlock(request(a))
        let g = await drain(m, 1)
        m.confirm(g[0].id, accepted: false)
        #expect(await drain(m, 1).map(\.request.owner) == [c])
        // Answered twice: nothing more happens.
        m.confirm(g[0].id, accepted: false)
        #expect(m.test(request(a))?.owner == c)
    }

    @Test("CANCEL withdraws a waiter, or the lock a grant gave it that crossed the cancel")
    func cancel() async throws {
        let m = LockManager()
        _ = m.lock(request(a))
        _ = m.lock(request(b), blockingWith: try notice(b))
        #expect(m.cancel(request(b)))
        #expect(!m.cancel(request(b)))
        #expect(m.waiting == 0)
        _ = m.lock(request(c), blockingWith: try notice(c))
        m.unlock(request(a))
        _ = await drain(m, 1)
        #expect(m.cancel(request(c)))
        #expect(m.test(request(a)) == nil)
    }

    @Test("a downgrade lets shared waiters through")
    func downgradeWakes() async throws {
        let m = LockManager()
        _ = m.lock(request(a))
        _ = m.lock(request(b, exclusive: false), blockingWith: try notice(b))
        #expect(m.lock(request(a, exclusive: false)) == .granted)
        #expect(await drain(m, 1).map(\.request.owner) == [b])
    }

    @Test("releasing a client's everything drops its locks, waiters and shares and wakes the others")
    func releaseAll() async throws {
        let m = LockManager()
        _ = m.lock(request(a))
        _ = m.lock(request(b), blockingWith: try notice(b))
        _ = m.lock(LockRequest(file: LockFile(export: 1, file: 7), owner: c, exclusive: true, range: LockRange(start: 0, end: 1)),
                   blockingWith: try notice(c))
        #expect(m.share(file, owner: a, denyMode: 2, access: 1))
        #expect(m.releaseAll { $0.host == "a" } == 1)
        #expect(await drain(m, 1).map(\.request.owner) == [b])
        #expect(m.share(file, owner: c, denyMode: 0, access: 2))
        // c's request on the other file found it free and holds it.
        #expect(m.releaseAll { $0.host == "c" } == 1)
        #expect(m.waiting == 0)
    }

    @Test("share reservations: what one denies, another cannot do, and the reverse")
    func shares() {
        let m = LockManager()
        #expect(m.share(file, owner: a, denyMode: 2, access: 1))   // reads, denies writes
        #expect(!m.share(file, owner: b, denyMode: 0, access: 2))  // wants to write
        #expect(m.share(file, owner: b, denyMode: 0, access: 1))   // reads
        #expect(!m.share(file, owner: c, denyMode: 1, access: 1))  // would deny the readers
        m.unshare(file, owner: a)
        m.unshare(file, owner: b)
        #expect(m.share(file, owner: c, denyMode: 3, access: 3))
    }

    @Test("locks are bounded: past maxLocks a new one is refused, and a release makes room")
    func lockLimit() {
        let m = LockManager(maxLocks: 2)
        #expect(m.lock(request(a, 0, 10)) == .granted)
        #expect(m.lock(request(b, 20, 30)) == .granted)
        #expect(m.lock(request(c, 40, 50)) == .full)
        m.unlock(request(b, 20, 30))
        #expect(m.lock(request(c, 40, 50)) == .granted)
        #expect(m.table.count == 2)
    }

    @Test("blocked requests are bounded per client and in all")
    func bounded() throws {
        let m = LockManager(maxWaitersPerClient: 2, maxWaiters: 3)
        _ = m.lock(request(a))
        for i in 0..<2 {
            let r = LockRequest(file: file, owner: LockOwner(host: "b", address: b.address, handle: [UInt8(i)], process: Int32(i)),
                                exclusive: true, range: LockRange(start: 0, end: 10))
            #expect(m.lock(r, blockingWith: try notice(b)) == .blocked)
        }
        #expect(m.lock(request(b, 50, 60), blockingWith: try notice(b)) == .full)
        #expect(m.lock(request(c), blockingWith: try notice(c)) == .blocked)
        let d = LockOwner(host: "d", address: "10.0.0.4", handle: [4], process: 4)
        #expect(m.lock(request(d), blockingWith: try notice(d)) == .full)
        // Without a notice (a non-blocking request) it is a plain denial.
        #expect(m.lock(request(d)) == .denied(FileLock(owner: a, exclusive: true, range: LockRange(start: 0, end: 100))))
    }
}

@Suite struct ClientMonitorTests {
    @Test("the state moves on (and stays odd) at every start; clients and local monitors are kept")
    func survivesRestarts() throws {
        let saved = NIOLockedValueBox<[UInt8]?>(nil)
        let first = try ClientMonitor(saved: nil) { bytes in saved.withLockedValue { $0 = bytes } }
        #expect(first.state == 1 && first.previousClients.isEmpty)
        let client = MonitoredClient(name: "client", address: "10.0.0.9", serverAddress: "10.0.0.1")
        try first.watch(client)
        let local = NSMMonitor(host: "10.0.0.1", callback: NSMCallback(name: "me", program: 100_021, version: 3, procedure: 16),
                               cookie: Array(1...16))
        try first.addLocal(local)
        let second = try ClientMonitor(saved: saved.withLockedValue { $0 }) { bytes in saved.withLockedValue { $0 = bytes } }
        #expect(second.state == 3)
        #expect(second.previousClients == [client] && second.previousLocalMonitors == [local])
        try second.forget { $0.address == "10.0.0.9" }
        try second.removeLocal(host: nil, callback: local.callback)
        let third = try ClientMonitor(saved: saved.withLockedValue { $0 }) { _ in }
        #expect(third.state == 5 && third.previousClients.isEmpty && third.previousLocalMonitors.isEmpty)
    }

    @Test("a takeover adopts the clients another node had on record, and a state past both")
    func adoptsAnotherNodesClients() throws {
        let saved = NIOLockedValueBox<[UInt8]?>(nil)
        // The old active: started three times (state 5), one client.
        var other = try ClientMonitor(saved: nil) { _ in }
        for _ in 0..<2 { other = try ClientMonitor(saved: other.encoded) { _ in } }
        let a = MonitoredClient(name: "a", address: "10.0.0.9", serverAddress: "10.0.0.100")
        try other.watch(a)
        #expect(other.state == 5)
        // The new active (state 1), with a client of its own from an earlier term.
        let mine = try ClientMonitor(saved: nil) { bytes in saved.withLockedValue { $0 = bytes } }
        let b = MonitoredClient(name: "b", address: "10.0.0.8", serverAddress: "10.0.0.100")
        try mine.watch(b)
        try mine.adopt(other.encoded)
        #expect(Set(mine.clients) == [a, b] && mine.state == 5)
        try mine.advance()
        #expect(mine.state == 7)
        // What it saved is the union too; adopting the same again changes nothing.
        let reread = try ClientMonitor(saved: saved.withLockedValue { $0 }) { _ in }
        #expect(Set(reread.previousClients) == [a, b])
        try mine.adopt(other.encoded)
        #expect(mine.clients.count == 2 && mine.state == 7)
        #expect(throws: (any Error).self) { try mine.adopt(Array("hello".utf8)) }
    }

    @Test("a file that is not the monitor's is refused, not misread")
    func refusesForeignFiles() {
        #expect(throws: (any Error).self) { _ = try ClientMonitor(saved: Array("hello".utf8)) { _ in } }
    }

    @Test("a failed save refuses the client (the lock is not granted) and keeps the record as it was")
    func failedSave() throws {
        struct Full: Error {}
        let failing = NIOLockedValueBox(false)
        let m = try ClientMonitor(saved: nil) { _ in if failing.withLockedValue({ $0 }) { throw Full() } }
        failing.withLockedValue { $0 = true }
        #expect(throws: Full.self) { try m.watch(MonitoredClient(name: "x", address: "10.0.0.5", serverAddress: "")) }
        #expect(m.clients.isEmpty)
    }
}
