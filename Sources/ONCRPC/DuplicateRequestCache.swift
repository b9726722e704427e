import NIOConcurrencyHelpers
import NIOCore

/// The duplicate request cache: a retransmitted non-idempotent call that is already done gets the
/// original reply; one still in progress gets that reply when it is done. Never a second execution.
///
/// Keyed as knfsd keys its cache (fs/nfsd/nfscache.c): client address and port, xid, program,
/// version, procedure, and a checksum of the arguments so a reused xid with other arguments is a
/// new call. Completed entries are evicted oldest first beyond `capacity`.
public final class DuplicateRequestCache: Sendable {
    public struct Key: Hashable, Sendable {
        var client: String
        var xid: UInt32
        var program: UInt32
        var version: UInt32
        var procedure: UInt32
        var argumentsLength: Int
        var argumentsChecksum: UInt64

        public init(call: RPCCall, client: SocketAddress?) {
            self.client = client.map { "\($0)" } ?? "-"
            self.xid = call.xid
            self.program = call.program
            self.version = call.version
            self.procedure = call.procedure
            self.argumentsLength = call.arguments.readableBytes
            self.argumentsChecksum = Self.checksum(call.arguments)
        }

        /// FNV-1a over at most the first 256 bytes (knfsd checksums the same prefix).
        static func checksum(_ buffer: ByteBuffer) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            buffer.withUnsafeReadableBytes { bytes in
                for b in bytes.prefix(256) {
                    h = (h ^ UInt64(b)) &* 0x100_0000_01b3
                }
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
    }

    private let state = NIOLockedValueBox(State())
    public let capacity: Int

    public init(capacity: Int = 16_384) {
        self.capacity = capacity
    }

    /// Looks the call up; when it is new, marks it in progress.
    public func begin(_ key: Key, waiter: Waiter?) -> Lookup {
        state.withLockedValue { s in
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
        let waiters: [Waiter] = state.withLockedValue { s in
            guard case .inProgress(let w)? = s.entries[key] else { return [] }
            s.entries[key] = .done(reply)
            s.order.append(key)
            while s.order.count - s.orderHead > capacity {
                s.entries[s.order[s.orderHead]] = nil
                s.orderHead += 1
            }
            if s.orderHead > capacity {
                s.order.removeFirst(s.orderHead)
                s.orderHead = 0
            }
            return w
        }
        for w in waiters { w(reply) }
    }

    /// Calls answered from the cache so far.
    public var hits: Int { state.withLockedValue { $0.hits } }
}
