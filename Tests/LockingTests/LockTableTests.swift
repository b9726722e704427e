@testable import Locking
import Testing

/// POSIX byte-range semantics of the lock table (the layer under NLM): the rules fcntl gives
/// local processes, which lockd clients expect of the server.
struct LockTableTests {
    let a = LockOwner(host: "client-a", handle: [1], process: 100)
    let a2 = LockOwner(host: "client-a", handle: [2], process: 101)
    let b = LockOwner(host: "client-b", handle: [1], process: 100)

    func r(_ start: UInt64, _ end: UInt64) -> LockRange { LockRange(start: start, end: end) }

    func held(_ t: LockTable<Int>, _ owner: LockOwner) -> [String] {
        t.locks(1).filter { $0.owner == owner }.sorted { $0.range.start < $1.range.start }
            .map { "\($0.exclusive ? "W" : "R") \($0.range)" }
    }

    @Test("other owners conflict where one lock is exclusive; shared locks coexist; an owner never conflicts with itself")
    func conflicts() {
        let t = LockTable<Int>()
        #expect(t.lock(1, owner: a, exclusive: false, range: r(0, 100)) == nil)
        #expect(t.lock(1, owner: b, exclusive: false, range: r(50, 150)) == nil, "two read locks")
        #expect(t.lock(1, owner: b, exclusive: true, range: r(90, 95))?.owner == a, "write over another's read")
        #expect(t.conflict(1, owner: a2, exclusive: true, range: r(100, 200))?.owner == b, "same host, other process")
        #expect(t.conflict(1, owner: a, exclusive: true, range: r(0, 50)) == nil, "own lock")
        #expect(t.conflict(1, owner: b, exclusive: true, range: r(150, 160)) == nil, "past every lock")
        #expect(t.lock(2, owner: b, exclusive: true, range: r(0, 100)) == nil, "another file")
    }

    @Test("an owner's new lock replaces its own where they overlap: upgrade and downgrade split the old one")
    func upgradeAndDowngrade() {
        let t = LockTable<Int>()
        _ = t.lock(1, owner: a, exclusive: false, range: r(0, 100))
        #expect(t.lock(1, owner: a, exclusive: true, range: r(40, 60)) == nil)
        #expect(held(t, a) == ["R 0-39", "W 40-59", "R 60-99"])
        #expect(t.lock(1, owner: a, exclusive: false, range: r(0, 100)) == nil, "downgrade all of it")
        #expect(held(t, a) == ["R 0-99"])
        // A write lock another owner's read lock is in the way of changes nothing.
        _ = t.lock(1, owner: b, exclusive: false, range: r(90, 95))
        #expect(t.lock(1, owner: a, exclusive: true, range: r(0, 100))?.owner == b)
        #expect(held(t, a) == ["R 0-99"])
    }

    @Test("locks of one kind merge when they overlap or touch; unlock in the middle splits")
    func mergeAndSplit() {
        let t = LockTable<Int>()
        _ = t.lock(1, owner: a, exclusive: true, range: r(0, 10))
        _ = t.lock(1, owner: a, exclusive: true, range: r(10, 20))
        _ = t.lock(1, owner: a, exclusive: true, range: r(15, 30))
        _ = t.lock(1, owner: a, exclusive: false, range: r(30, 40))
        #expect(held(t, a) == ["W 0-29", "R 30-39"], "touching write locks merge; a read lock next to them does not")
        t.unlock(1, owner: a, range: r(5, 8))
        #expect(held(t, a) == ["W 0-4", "W 8-29", "R 30-39"])
        #expect(t.conflict(1, owner: b, exclusive: true, range: r(5, 8)) == nil, "the hole is free")
        t.unlock(1, owner: b, range: r(0, 100))
        #expect(held(t, a).count == 3, "another owner's unlock releases nothing of a's")
        t.unlock(1, owner: a, range: LockRange(offset: 0, length: 0))
        #expect(t.locks(1).isEmpty)
    }

    @Test("length 0 reaches the end of the file, however far; a range past the largest offset stops there")
    func toEndOfFile() {
        let t = LockTable<Int>()
        let whole = LockRange(offset: 1000, length: 0)
        #expect(whole.end == .max && whole.length == 0 && whole.description == "1000-EOF")
        _ = t.lock(1, owner: a, exclusive: true, range: whole)
        #expect(t.conflict(1, owner: b, exclusive: false, range: r(UInt64.max - 2, UInt64.max - 1))?.owner == a)
        #expect(t.conflict(1, owner: b, exclusive: false, range: r(0, 1000)) == nil)
        let clipped = LockRange(offset: UInt64.max - 5, length: 100)
        #expect(clipped.end == .max)
        t.unlock(1, owner: a, range: LockRange(offset: 2000, length: 0))
        #expect(held(t, a) == ["W 1000-1999"])
    }

    @Test("a host's locks all go at once (FREE_ALL, a rebooted client); other hosts keep theirs")
    func releaseAll() {
        let t = LockTable<Int>()
        _ = t.lock(1, owner: a, exclusive: true, range: r(0, 10))
        _ = t.lock(2, owner: a2, exclusive: false, range: r(0, 10))
        _ = t.lock(1, owner: b, exclusive: true, range: r(20, 30))
        #expect(t.count == 3)
        #expect(t.releaseAll { $0.host == "client-a" } == [1, 2])
        #expect(t.locks(2).isEmpty && t.locks(1).map(\.owner) == [b])
        #expect(t.count == 1)
        #expect(t.releaseAll { $0.host == "client-a" }.isEmpty)
    }
}
