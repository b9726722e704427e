import NIOCore
import ONCRPC
import Testing
import XDR

/// A duplicate request cache entry as a journal keeps it (`DuplicateRequestCache.encode`) and
/// as another process takes it in (`remember`): the same key, the same reply bytes, bounded as
/// the cache's own entries are.
@Suite struct DuplicateReplyRecordTests {
    let allocator = ByteBufferAllocator()

    static func call(xid: UInt32, arguments: [UInt8] = [0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]) -> RPCCall {
        RPCCall(xid: xid, program: 100_003, version: 3, procedure: 12, arguments: ByteBuffer(bytes: arguments))
    }

    static func key(xid: UInt32, port: Int = 801) throws -> DuplicateRequestCache.Key {
        DuplicateRequestCache.Key(call: call(xid: xid), client: try SocketAddress(ipAddress: "10.1.2.3", port: port))
    }

    /// A reply as the dispatcher makes it: the room for a record mark, the header, results
    /// (and, to cover it, a payload after them).
    func reply(xid: UInt32, results: [UInt8], payload: [UInt8]? = nil) -> RPCReplyMessage {
        var reply = RPCDispatcher.errorReply(xid: xid, .success, allocator: allocator)
        reply.header.writeBytes(results)
        reply.payload = payload.map { ByteBuffer(bytes: $0) }
        return reply
    }

    /// The bytes a client receives for `reply`.
    static func wire(_ reply: RPCReplyMessage) -> [UInt8] { Array(reply.datagram().readableBytesView) }

    @Test func anEntryRoundTripsWithItsKeyAndTheReplyBytes() throws {
        for client in [try SocketAddress(ipAddress: "10.1.2.3", port: 801), try SocketAddress(ipAddress: "fe80::1", port: 2049)] {
            let key = DuplicateRequestCache.Key(call: Self.call(xid: 77), client: client)
            let original = reply(xid: 77, results: [0, 0, 0, 0, 9, 9, 9, 9], payload: [5, 6, 7])
            let entry = try #require(DuplicateRequestCache.encode(key, reply: original, recorded: 1_700_000_000))
            let (decodedKey, decodedReply, recorded) = try DuplicateRequestCache.decode(entry)
            #expect(decodedKey == key)
            #expect(recorded == 1_700_000_000)
            #expect(decodedReply.xid == 77)
            #expect(Self.wire(decodedReply) == Self.wire(original))
            #expect(decodedReply.recordMarked().0.getInteger(at: 0, as: UInt32.self) == original.recordMarked().0.getInteger(at: 0, as: UInt32.self))
        }
    }

    @Test func otherArgumentsOrAnotherClientPortAreAnotherKey() throws {
        let entry = try #require(DuplicateRequestCache.encode(try Self.key(xid: 5), reply: reply(xid: 5, results: [0, 0, 0, 0]), recorded: 1))
        let key = try DuplicateRequestCache.decode(entry).key
        #expect(key != (try Self.key(xid: 5, port: 802)))
        let other = DuplicateRequestCache.Key(call: Self.call(xid: 5, arguments: [0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 9]),
                                              client: try SocketAddress(ipAddress: "10.1.2.3", port: 801))
        #expect(key != other)
    }

    @Test func aDamagedEntryIsRefused() throws {
        let entry = try #require(DuplicateRequestCache.encode(try Self.key(xid: 5), reply: reply(xid: 5, results: [0, 0, 0, 0]), recorded: 1))
        // Cut anywhere: truncated.
        for cut in [0, 10, 40, entry.count - 1] {
            #expect(throws: XDRError.self) { try DuplicateRequestCache.decode(Array(entry.prefix(cut))) }
        }
        // Bytes after it.
        #expect(throws: XDRError.self) { try DuplicateRequestCache.decode(entry + [0, 0, 0, 0]) }
        // A reply that is not the key's (its xid is the first four bytes of the reply, after
        // the time, the key and the reply's length).
        var wrongXID = entry
        wrongXID[64 + 3] ^= 1
        #expect(throws: XDRError.self) { try DuplicateRequestCache.decode(wrongXID) }
    }

    @Test func aReplyTooLargeIsNotRecorded() throws {
        let large = reply(xid: 5, results: [], payload: [UInt8](repeating: 1, count: DuplicateRequestCache.maxRecordedReply))
        #expect(DuplicateRequestCache.encode(try Self.key(xid: 5), reply: large, recorded: 1) == nil)
    }

    @Test func aRememberedEntryIsReplayedUnlessItIsTooOld() throws {
        let original = reply(xid: 9, results: [0, 0, 0, 0, 1])
        let entry = try #require(DuplicateRequestCache.encode(try Self.key(xid: 9), reply: original, recorded: 1000))
        // Too old to be taken in: its client stopped retransmitting long ago.
        let late = DuplicateRequestCache()
        #expect(try late.remember(encoded: entry, notBefore: 1001) == false)
        guard case .execute = late.begin(try Self.key(xid: 9), waiter: nil) else { Issue.record("an old entry was taken in"); return }
        let fresh = DuplicateRequestCache()
        #expect(try fresh.remember(encoded: entry, notBefore: 1000))
        guard case .replay(let r) = fresh.begin(try Self.key(xid: 9), waiter: nil) else {
            Issue.record("a remembered entry was not replayed")
            return
        }
        #expect(Self.wire(r) == Self.wire(original))
        // Another xid from the same client is a new call.
        guard case .execute = fresh.begin(try Self.key(xid: 10), waiter: nil) else {
            Issue.record("another xid was not executed")
            return
        }
    }

    /// What this process runs or ran wins over an entry of another.
    @Test func rememberLeavesThisProcesssEntriesAlone() throws {
        let cache = DuplicateRequestCache()
        let key = try Self.key(xid: 3)
        guard case .execute = cache.begin(key, waiter: nil) else { Issue.record("expected execute"); return }
        cache.remember(key, reply: reply(xid: 3, results: [1]))
        guard case .waiting = cache.begin(key, waiter: nil) else { Issue.record("an entry in progress was replaced"); return }
        cache.complete(key, reply: reply(xid: 3, results: [2]))
        cache.remember(key, reply: reply(xid: 3, results: [3]))
        guard case .replay(let r) = cache.begin(key, waiter: nil) else { Issue.record("expected replay"); return }
        #expect(Self.wire(r).last == 2)
    }

    /// Remembered entries count against the capacity as completed ones do: the newest stay.
    @Test func rememberedEntriesAreBounded() throws {
        let cache = DuplicateRequestCache(capacity: 4)
        for xid in UInt32(1)...10 { cache.remember(try Self.key(xid: xid), reply: reply(xid: xid, results: [0])) }
        for xid in UInt32(1)...6 {
            guard case .execute = cache.begin(try Self.key(xid: xid), waiter: nil) else { Issue.record("xid \(xid) kept past the bound"); return }
        }
        for xid in UInt32(7)...10 {
            guard case .replay = cache.begin(try Self.key(xid: xid), waiter: nil) else { Issue.record("xid \(xid) not kept"); return }
        }
    }
}
