import NIOCore
import XDR

/// A complete reply: the header (RPC reply header and results; the first
/// `RPCReplyMessage.reservedHeadroom` bytes are left free for a record mark) and an optional
/// bulk payload sent after it without copying.
public struct RPCReplyMessage: Sendable {
    /// Bytes reserved before the reply so a TCP transport can put the record mark there.
    public static let reservedHeadroom = 4
    public var xid: UInt32
    public var header: ByteBuffer
    public var payload: ByteBuffer?
    /// Why a GARBAGE_ARGS or SYSTEM_ERR reply was made, for the transport's log.
    public var failureReason: String?
    /// What the reply must wait for before it is sent (`RPCDispatcher.release` waits).
    public var hold: (any RPCReplyHold)?

    public var length: Int { header.readableBytes - Self.reservedHeadroom + (payload?.readableBytes ?? 0) }

    /// The reply as one record-marked TCP record: the header with its mark filled in, then the payload.
    public func recordMarked() -> (ByteBuffer, ByteBuffer?) {
        var h = header
        h.setInteger(RecordMarking.header(length: length), at: h.readerIndex, endianness: .big, as: UInt32.self)
        return (h, payload)
    }

    /// The reply as one datagram (the payload is copied; UDP replies are small).
    public func datagram() -> ByteBuffer {
        var h = header
        h.moveReaderIndex(forwardBy: Self.reservedHeadroom)
        if var p = payload { h.writeBuffer(&p) }
        return h
    }
}

/// What to do with one received record.
public enum RPCRoute: Sendable {
    /// Not a call we can answer (unparseable header, or a reply); the reason is for the log.
    case drop(reason: String)
    /// Answer immediately with this RPC-level error.
    case reply(RPCReplyMessage)
    /// Run the procedure.
    case execute(RPCPendingCall)
}

public struct RPCPendingCall: Sendable {
    public var call: RPCCall
    public var program: any RPCProgram
    public var traits: RPCProcedureTraits
    public var context: RPCCallContext
}

/// Routes records to programs and turns outcomes into replies. Pure: no sockets, no threads.
public struct RPCDispatcher: Sendable {
    private var programs: [UInt32: any RPCProgram] = [:]

    public init(programs: [any RPCProgram]) {
        for p in programs { self.programs[p.program] = p }
    }

    public var registered: [any RPCProgram] { Array(programs.values) }

    public func route(record: ByteBuffer, remoteAddress: SocketAddress?, localAddress: SocketAddress?,
                      transport: RPCTransportProtocol, allocator: ByteBufferAllocator) -> RPCRoute {
        var record = record
        let incoming: RPCIncoming
        do {
            incoming = try record.readRPCMessage()
        } catch {
            return .drop(reason: "unparseable RPC header: \(error)")
        }
        let call: RPCCall
        switch incoming {
        case .reply(let xid, _):
            return .drop(reason: "unexpected reply xid \(xid)")
        case .wrongRPCVersion(let xid):
            return .reply(Self.errorReply(xid: xid, .rpcMismatch(low: rpcVersion, high: rpcVersion), allocator: allocator))
        case .call(let c):
            call = c
        }
        guard let program = programs[call.program] else {
            return .reply(Self.errorReply(xid: call.xid, .progUnavail, allocator: allocator))
        }
        guard program.supports(version: call.version) else {
            let mismatch = RPCReplyStatus.progMismatch(low: program.versions.lowerBound, high: program.versions.upperBound)
            return .reply(Self.errorReply(xid: call.xid, mismatch, allocator: allocator))
        }
        guard let traits = program.traits(procedure: call.procedure, version: call.version) else {
            return .reply(Self.errorReply(xid: call.xid, .procUnavail, allocator: allocator))
        }
        let credentials: RPCCredentials
        switch RPCCredentials.decode(call.credential) {
        case .success(let c): credentials = c
        case .failure(let e): return .reply(Self.errorReply(xid: call.xid, .authError(e.stat), allocator: allocator))
        }
        let context = RPCCallContext(remoteAddress: remoteAddress, localAddress: localAddress,
                                     transport: transport, credentials: credentials)
        return .execute(RPCPendingCall(call: call, program: program, traits: traits, context: context))
    }

    /// Runs a routed call. Blocking programs must be executed off the event loop by the caller.
    public static func execute(_ pending: RPCPendingCall, allocator: ByteBufferAllocator) -> RPCReplyMessage {
        reply(pending, allocator: allocator) { try pending.program.handle(pending.call, context: pending.context, results: &$0) }!
    }

    /// The reply of a blocking call if its program can answer it without blocking
    /// (`RPCProgram.handleWithoutBlocking`), or nil when it must go to the thread pool.
    public static func executeWithoutBlocking(_ pending: RPCPendingCall, allocator: ByteBufferAllocator) -> RPCReplyMessage? {
        reply(pending, allocator: allocator) {
            try pending.program.handleWithoutBlocking(pending.call, context: pending.context, results: &$0)
        }
    }

    private static func reply(_ pending: RPCPendingCall, allocator: ByteBufferAllocator,
                              _ handle: (inout ByteBuffer) throws -> RPCProcedureOutcome?) -> RPCReplyMessage? {
        var buffer = replyHeader(xid: pending.call.xid, .success, capacity: 256, allocator: allocator)
        let outcome: RPCProcedureOutcome
        do {
            guard let o = try handle(&buffer) else { return nil }
            outcome = o
        } catch let error as XDRError {
            var reply = errorReply(xid: pending.call.xid, .garbageArgs, allocator: allocator)
            reply.failureReason = "\(error)"
            return reply
        } catch {
            var reply = errorReply(xid: pending.call.xid, .systemErr, allocator: allocator)
            reply.failureReason = "\(error)"
            return reply
        }
        switch outcome {
        case .success(let payload):
            return RPCReplyMessage(xid: pending.call.xid, header: buffer, payload: payload)
        case .held(let payload, let hold):
            return RPCReplyMessage(xid: pending.call.xid, header: buffer, payload: payload, hold: hold)
        case .failure(let status):
            return errorReply(xid: pending.call.xid, status, allocator: allocator)
        }
    }

    /// Calls `send` with `reply` once its hold (if any) releases it: as it is, or with the
    /// results the hold gave instead. `send` may come on another thread, after this returns.
    public static func release(_ reply: RPCReplyMessage, allocator: ByteBufferAllocator,
                               _ send: @escaping @Sendable (RPCReplyMessage) -> Void) {
        guard let hold = reply.hold else { return send(reply) }
        var released = reply
        released.hold = nil
        hold.whenReleased(allocator: allocator) { [released] replacement in
            guard var results = replacement else { return send(released) }
            var buffer = replyHeader(xid: released.xid, .success, capacity: 64 + results.readableBytes, allocator: allocator)
            buffer.writeBuffer(&results)
            send(RPCReplyMessage(xid: released.xid, header: buffer, payload: nil))
        }
    }

    public static func errorReply(xid: UInt32, _ status: RPCReplyStatus, allocator: ByteBufferAllocator) -> RPCReplyMessage {
        RPCReplyMessage(xid: xid, header: replyHeader(xid: xid, status, capacity: 40, allocator: allocator), payload: nil)
    }

    /// A reply's buffer: the room for a record mark, then the reply header; results follow.
    static func replyHeader(xid: UInt32, _ status: RPCReplyStatus, capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: capacity)
        buffer.writeRepeatingByte(0, count: RPCReplyMessage.reservedHeadroom)
        buffer.writeRPCReplyHeader(xid: xid, status: status)
        return buffer
    }
}
