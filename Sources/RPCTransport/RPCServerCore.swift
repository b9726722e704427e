import Logging
import NIOCore
import NIOPosix
import ONCRPC

/// Limits that keep one client from taking the server down with it.
public struct RPCServerLimits: Sendable {
    /// Calls executing at once for one TCP connection before we stop reading from it.
    public var maxInFlightPerConnection: Int = 64
    /// Calls executing at once for one UDP socket before further datagrams are dropped
    /// (UDP clients retransmit).
    public var maxInFlightPerDatagramSocket: Int = 512
    public var maxRecordSize: Int = RPCLimits.maxRecordSize
    public var maxFragmentsPerRecord: Int = RPCLimits.maxFragmentsPerRecord
    /// TCP connections from one client address (Linux `nconnect` allows up to 16).
    public var maxConnectionsPerClient: Int = 64
    /// TCP connections in all: a thousand clients' idle mounts and more (an idle connection
    /// costs a descriptor and a few KiB; the process's descriptor limit is raised to its hard
    /// limit at start, and connections idle for `idleTimeout` are closed).
    public var maxConnections: Int = 4096
    /// Bytes of calls received and not yet answered, over all TCP connections, before every
    /// connection stops reading (see `InFlightBudget`).
    public var maxInFlightBytes: Int = 48 << 20
    /// A connection with no traffic in either direction for this long is closed (knfsd: 6
    /// minutes); a client reconnects transparently when it next has something to send.
    public var idleTimeout: TimeAmount = .minutes(5)

    public init() {}
}

/// Whether a server answers at all right now: a high-availability node answers only while it
/// is the active. Asked as each call comes in and again right before its reply goes out, so a
/// node that stops being the active acknowledges nothing more, even of calls it was running.
public protocol RPCServingGate: Sendable {
    /// Whether calls are answered now.
    var isOpen: Bool { get }
    /// Whether a call refused while closed gets an RPC error (PROG_UNAVAIL: the client reached
    /// this node by an address of its own, and should hear that nothing is served there) rather
    /// than no answer at all (the call may have come to the service address as it moved: the
    /// client's retry reaches the new active). `localAddress` is where the call came in (a
    /// wildcard for UDP).
    func refusesOpenly(localAddress: SocketAddress?) -> Bool
}

/// What the TCP and UDP listeners share: routing, the duplicate request cache, and the pools
/// that run blocking procedures.
public struct RPCServerCore: Sendable {
    public var dispatcher: RPCDispatcher
    public var cache: DuplicateRequestCache
    public var threadPool: any RPCCallExecutor
    /// Runs the procedures that may wait for storage (`RPCProcedureTraits.mayWaitForStorage`).
    public var storagePool: any RPCCallExecutor
    public var logger: Logger
    public var limits: RPCServerLimits
    /// Shared by every listener made with this core.
    public var budget: InFlightBudget
    /// When set, calls are answered only while it is open.
    public var gate: (any RPCServingGate)?
    /// Where the replies of procedures that record them (`RPCProcedureTraits.recordsReply`) are
    /// kept beyond this process (a server's journal), each before it is released.
    public var replyRecorder: (any DuplicateReplyRecorder)?
    /// What each event loop received and handed off, over every listener made with this core.
    public let loopCounts = EventLoopCallCounts()

    public init(dispatcher: RPCDispatcher, cache: DuplicateRequestCache, threadPool: any RPCCallExecutor,
                storagePool: (any RPCCallExecutor)? = nil, logger: Logger, limits: RPCServerLimits = RPCServerLimits()) {
        self.dispatcher = dispatcher
        self.cache = cache
        self.threadPool = threadPool
        self.storagePool = storagePool ?? threadPool
        self.logger = logger
        self.limits = limits
        self.budget = InFlightBudget(limit: limits.maxInFlightBytes)
    }

    /// Handles one record. `send` is called exactly once for every call that is answered
    /// (possibly on another thread) and never for records that are dropped; returns whether a
    /// reply will come.
    /// `counts` are those of the event loop this runs on.
    func receive(record: ByteBuffer, remote: SocketAddress?, local: SocketAddress?,
                 transport: RPCTransportProtocol, allocator: ByteBufferAllocator, counts: EventLoopCallCounts.Slot,
                 send: @escaping @Sendable (RPCReplyMessage) -> Void) -> Bool {
        counts.received.add(1, ordering: .relaxed)
        var route = dispatcher.route(record: record, remoteAddress: remote, localAddress: local,
                                     transport: transport, allocator: allocator)
        // The reply of a call that ran goes out only if the gate is still open then.
        var sendResults = send
        if let gate {
            route = Self.gated(route, gate: gate, local: local, allocator: allocator)
            sendResults = { [logger] reply in
                guard gate.isOpen else {
                    return logger.notice("rpc reply withheld: this node stopped serving", metadata: ["rpc.xid": "\(reply.xid)"])
                }
                send(reply)
            }
        }
        switch route {
        case .drop(let reason):
            logger.info("rpc record dropped", metadata: ["rpc.peer": "\(remote.map { "\($0)" } ?? "-")", "rpc.reason": "\(reason)"])
            return false
        case .reply(let reply):
            send(reply)
            return true
        case .execute(let pending):
            if !execute(pending, allocator: allocator, send: sendResults) { counts.handedOff.add(1, ordering: .relaxed) }
            return true
        }
    }

    /// What becomes of a call while `gate` is closed: an RPC error or nothing (see `RPCServingGate`).
    static func gated(_ route: RPCRoute, gate: any RPCServingGate, local: SocketAddress?, allocator: ByteBufferAllocator) -> RPCRoute {
        guard !gate.isOpen else { return route }
        guard gate.refusesOpenly(localAddress: local) else { return .drop(reason: "not serving: a standby of a cluster") }
        switch route {
        case .drop, .reply: return route
        case .execute(let pending): return .reply(RPCDispatcher.errorReply(xid: pending.call.xid, .progUnavail, allocator: allocator))
        }
    }

    /// Returns whether the call was answered (or left to the duplicate request cache) here,
    /// false when it went to a pool.
    private func execute(_ pending: RPCPendingCall, allocator: ByteBufferAllocator,
                         send: @escaping @Sendable (RPCReplyMessage) -> Void) -> Bool {
        var cacheKey: DuplicateRequestCache.Key?
        if !pending.traits.isIdempotent {
            let k = DuplicateRequestCache.Key(call: pending.call, client: pending.context.remoteAddress)
            switch cache.begin(k, waiter: send) {
            case .execute: cacheKey = k
            case .replay(let reply):
                logger.debug("rpc reply replayed from the duplicate request cache", metadata: ["rpc.xid": "\(pending.call.xid)"])
                send(reply)
                return true
            case .waiting:
                logger.debug("rpc retransmission of a call in progress", metadata: ["rpc.xid": "\(pending.call.xid)"])
                return true
            }
        }
        let logger = self.logger
        let cache = self.cache
        let key = cacheKey
        let record = recording(pending, key: key)
        let finish: @Sendable (RPCReplyMessage) -> Void = { reply in
            if let reason = reply.failureReason {
                logger.notice("rpc call failed", metadata: [
                    "rpc.xid": "\(pending.call.xid)", "rpc.prog": "\(pending.call.program)",
                    "rpc.vers": "\(pending.call.version)", "rpc.proc": "\(pending.call.procedure)",
                    "rpc.peer": "\(pending.context.remoteAddress.map { "\($0)" } ?? "-")",
                    "rpc.reason": "\(reason)",
                ])
            }
            if let key { cache.complete(key, reply: reply) }
            send(reply)
        }
        guard pending.traits.isBlocking else {
            RPCDispatcher.release(record(RPCDispatcher.execute(pending, allocator: allocator)), allocator: allocator, finish)
            return true
        }
        if let reply = RPCDispatcher.executeWithoutBlocking(pending, allocator: allocator) {
            RPCDispatcher.release(record(reply), allocator: allocator, finish)
            return true
        }
        (pending.traits.mayWaitForStorage ? storagePool : threadPool).run { active in
            guard active else {
                return finish(RPCDispatcher.errorReply(xid: pending.call.xid, .systemErr, allocator: allocator))
            }
            // A reply held for stable storage frees this thread for the next call meanwhile.
            RPCDispatcher.release(record(RPCDispatcher.execute(pending, allocator: allocator)), allocator: allocator, finish)
        }
        return false
    }

    /// What a reply of `pending` becomes before its release: recorded by `replyRecorder` when the
    /// procedure records its replies, the call went through the cache (`key`), it ran (no
    /// RPC-level failure, which a retry may not meet) and this server still serves (a node
    /// that stopped serving appends nothing more to its journal); as it is otherwise.
    private func recording(_ pending: RPCPendingCall, key: DuplicateRequestCache.Key?) -> @Sendable (RPCReplyMessage) -> RPCReplyMessage {
        guard let recorder = replyRecorder, let key, pending.traits.recordsReply else { return { $0 } }
        let gate = self.gate
        return { reply in
            guard reply.failureReason == nil, gate?.isOpen ?? true else { return reply }
            return recorder.record(key, reply: reply)
        }
    }
}
