import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// The duplicate request cache: a retransmitted non-idempotent call that is already done gets the
/// original reply; one still in progress gets that reply when it is done. Never a second execution.
///
/// Keyed as knfsd keys its cache (fs/nfsd/nfscache.c): client address and port, xid, program,
/// version, procedure, and a checksum of the arguments so a reused xid with other arguments is a
/// new call. Completed entries are evicted oldest first beyond `capacity` (per shard: a shard
/// keeps its share). A server with a journal keeps the entries of changes there too
/// (`DuplicateReplyRecorder`), so that they outlive the process: a standby that takes over, or
/// the server restarted, answers a retransmission as the process that ran the call did.
public final class DuplicateRequestCache: Sendable {
    /// Plain numbers only: making, hashing and dropping a key allocates nothing and counts no
    /// references (the client's address was a string, made for every non-idempotent call).
    public struct Key: Hashable, Sendable {
        /// The client's address: an IPv6 address's bytes, an IPv4 address, or a hash of a
        /// local socket's path.
        var addressHigh: UInt64
        var addressLow: UInt64
        /// The client's port, and its address family above it.
        var port: UInt32
        var xid: UInt32
        var program: UInt32
        var version: UInt32
        var procedure: UInt32
        var argumentsLength: Int
        var argumentsChecksum: UInt64

        init(addressHigh: UInt64, addressLow: UInt64, port: UInt32, xid: UInt32, program: UInt32, version: UInt32,
             procedure: UInt32, argumentsLength: Int, argumentsChecksum: UInt64) {
            (self.addressHigh, self.addressLow, self.port, self.xid) = (addressHigh, addressLow, port, xid)
            (self.program, self.version, self.procedure) = (program, version, procedure)
            (self.argumentsLength, self.argumentsChecksum) = (argumentsLength, argumentsChecksum)
        }

        public init(call: RPCCall, client: SocketAddress?) {
            (addressHigh, addressLow, port) = Self.client(client)
            self.xid = call.xid
            self.program = call.program
            self.version = call.version
            self.procedure = call.procedure
            self.argumentsLength = call.arguments.readableBytes
            self.argumentsChecksum = Self.checksum(call.arguments)
        }

        static func client(_ address: SocketAddress?) -> (UInt64, UInt64, UInt32) {
            switch address {
            case .v4(let a)?:
                return (0, UInt64(a.address.sin_addr.s_addr), UInt32(a.address.sin_port) | 4 << 16)
            case .v6(let a)?:
                let (high, low) = withUnsafeBytes(of: a.address.sin6_addr) {
                    ($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                }
                return (high, low, UInt32(a.address.sin6_port) | 6 << 16)
            case .unixDomainSocket(let u)?:
                let path = withUnsafeBytes(of: u.address.sun_path) { Self.fnv(UnsafeRawBufferPointer(rebasing: $0.prefix { $0 != 0 })) }
                return (0, path, 1 << 16)
            case nil:
                return (0, 0, 0)
            }
        }

        /// A hash of at most the first 256 bytes (knfsd checksums the same prefix).
        static func checksum(_ buffer: ByteBuffer) -> UInt64 {
            buffer.withUnsafeReadableBytes { fnv(UnsafeRawBufferPointer(rebasing: $0.prefix(256))) }
        }

        /// FNV-1a over 8-byte words (then the bytes left): a few cycles a word, not a byte.
        static func fnv(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            var i = 0
            while i + 8 <= bytes.count {
                h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x100_0000_01b3
                h ^= h >> 29
                i += 8
            }
            while i < bytes.count {
                h = (h ^ UInt64(bytes[i])) &* 0x100_0000_01b3
                i += 1
            }
            return h
        }
    }

    public typealias Waiter = @Sendable (RPCReplyMessage) -> Void

    public enum Lookup: Sendable {
        /// First sight: execute, then call `complete`.
        case execute
        /// The original reply; send it again.
        case replay(RPCReplyMessage)
        /// Still executing; the waiter will get the reply.
        case waiting
    }

    private enum Entry {
        case inProgress([Waiter])
        case done(RPCReplyMessage)
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var order: [Key] = []
        var orderHead = 0
        var hits = 0

        /// Marks `key` done with `reply`, then evicts the oldest completed entries beyond `capacity`.
        mutating func store(_ key: Key, _ reply: RPCReplyMessage, capacity: Int) {
            entries[key] = .done(reply)
            order.append(key)
            while order.count - orderHead > capacity {
                entries[order[orderHead]] = nil
                orderHead += 1
            }
            if orderHead > capacity {
                order.removeFirst(orderHead)
                orderHead = 0
            }
        }
    }

    /// Shards of the cache, each with its own lock: the event loops begin calls and the pools'
    /// threads complete them, all at once.
    private let shards: [NIOLockedValueBox<State>]
    public let capacity: Int
    /// Completed entries each shard keeps.
    private let shardCapacity: Int

    public init(capacity: Int = 16_384) {
        self.capacity = capacity
        let count = capacity >= 1024 ? 16 : 1
        shards = (0..<count).map { _ in NIOLockedValueBox(State()) }
        shardCapacity = capacity / count
    }

    private func shard(_ key: Key) -> NIOLockedValueBox<State> {
        shards.count == 1 ? shards[0] : shards[Int(truncatingIfNeeded: (key.argumentsChecksum ^ UInt64(key.xid)) % UInt64(shards.count))]
    }

    /// Looks the call up; when it is new, marks it in progress.
    public func begin(_ key: Key, waiter: Waiter?) -> Lookup {
        shard(key).withLockedValue { s in
            switch s.entries[key] {
            case nil:
                s.entries[key] = .inProgress([])
                return .execute
            case .done(let reply)?:
                s.hits += 1
                return .replay(reply)
            case .inProgress(var waiters)?:
                s.hits += 1
                if let waiter { waiters.append(waiter) }
                s.entries[key] = .inProgress(waiters)
                return .waiting
            }
        }
    }

    /// Stores the reply and hands it to anyone who retransmitted meanwhile.
    public func complete(_ key: Key, reply: RPCReplyMessage) {
        let capacity = shardCapacity
        let waiters: [Waiter] = shard(key).withLockedValue { s in
            guard case .inProgress(let w)? = s.entries[key] else { return [] }
            s.store(key, reply, capacity: capacity)
            return w
        }
        for w in waiters { w(reply) }
    }

    /// Takes in an entry another process completed (an HA active whose journal this node
    /// follows, or this server before a restart: `DuplicateReplyRecorder`), as `complete` stores
    /// its own: a retransmission that reaches this process gets that reply. An entry this
    /// process has already is left as it is. Bounded as completed entries are: the oldest go first.
    public func remember(_ key: Key, reply: RPCReplyMessage) {
        let capacity = shardCapacity
        shard(key).withLockedValue { s in
            guard s.entries[key] == nil else { return }
            s.store(key, reply, capacity: capacity)
        }
    }

    /// Calls answered from the cache so far.
    public var hits: Int { shards.reduce(0) { $0 + $1.withLockedValue { $0.hits } } }
}
