import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ONCRPC
import XDR

public struct RPCClientError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case rejected(RPCReplyStatus)
        case timedOut
        case connectionClosed
    }
    public var reason: Reason
    public var description: String { "RPC call failed: \(reason)" }
}

/// A small ONC RPC client over TCP or UDP: used to register with a system rpcbind, by the
/// benchmark, and by tests. Many calls may be outstanding; replies are matched by xid.
public final class RPCClient: Sendable {
    private let channel: Channel
    private let transport: RPCTransportProtocol
    private let remote: SocketAddress
    private let state: NIOLockedValueBox<State>

    private struct State {
        var nextXID: UInt32
        var pending: [UInt32: EventLoopPromise<ByteBuffer>] = [:]
    }

    private init(channel: Channel, transport: RPCTransportProtocol, remote: SocketAddress,
                 state: NIOLockedValueBox<State>) {
        self.channel = channel
        self.transport = transport
        self.remote = remote
        self.state = state
    }

    /// Connects to `remote`. `localAddress` binds the client's own end first (a source address
    /// such as 127.0.0.2, or a privileged source port for `secure` exports).
    public static func connect(to remote: SocketAddress, transport: RPCTransportProtocol,
                               localAddress: SocketAddress? = nil, connectTimeout: TimeAmount = .seconds(10),
                               group: EventLoopGroup) async throws -> RPCClient {
        let state = NIOLockedValueBox(State(nextXID: UInt32.random(in: 1...UInt32.max / 2)))
        let deliver: @Sendable (ByteBuffer) -> Void = { record in
            var record = record
            guard let xid = try? record.readXDRUInt32(),
                  (try? record.readXDREnum(RPCMessageType.self)) == .reply else { return }
            let promise = state.withLockedValue { $0.pending.removeValue(forKey: xid) }
            promise?.succeed(record)
        }
        let failAll: @Sendable () -> Void = {
            let all = state.withLockedValue { s -> [EventLoopPromise<ByteBuffer>] in
                defer { s.pending = [:] }
                return Array(s.pending.values)
            }
            for p in all { p.fail(RPCClientError(reason: .connectionClosed)) }
        }
        let channel: Channel
        switch transport {
        case .tcp:
            var bootstrap = ClientBootstrap(group: group).connectTimeout(connectTimeout)
            if let localAddress { bootstrap = bootstrap.bind(to: localAddress) }
            channel = try await bootstrap
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(RPCRecordDecoder()))
                        try ch.pipeline.syncOperations.addHandler(ClientInbound<ByteBuffer>(deliver: deliver, closed: failAll))
                    }
                }
                .connect(to: remote).get()
        case .udp:
            let any: SocketAddress = try localAddress ?? (remote.protocol == .inet6
                ? SocketAddress(ipAddress: "::", port: 0) : SocketAddress(ipAddress: "0.0.0.0", port: 0))
            channel = try await DatagramBootstrap(group: group)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: RPCLimits.maxDatagramSize))
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ClientInbound<AddressedEnvelope<ByteBuffer>>(
                            deliver: { deliver($0.data) }, closed: failAll))
                    }
                }
                .bind(to: any).get()
        }
        return RPCClient(channel: channel, transport: transport, remote: remote, state: state)
    }

    /// Calls a procedure and returns its results (what follows accept_stat SUCCESS).
    /// Any other reply status throws `RPCClientError.rejected`.
    public func call(program: UInt32, version: UInt32, procedure: UInt32,
                     credentials: RPCCredentials = .none, arguments: ByteBuffer = ByteBuffer(),
                     timeout: TimeAmount = .seconds(10)) async throws -> ByteBuffer {
        var results = try await rawCall(program: program, version: version, procedure: procedure,
                                        credentials: credentials, arguments: arguments, timeout: timeout)
        let status = try results.readRPCReplyStatus()
        guard status == .success else { throw RPCClientError(reason: .rejected(status)) }
        return results
    }

    /// Sends a call and returns the reply body after xid and msg_type. `xid` repeats an earlier
    /// call's xid (a retransmission) when given.
    public func rawCall(program: UInt32, version: UInt32, procedure: UInt32,
                        credentials: RPCCredentials = .none, arguments: ByteBuffer = ByteBuffer(),
                        xid fixedXID: UInt32? = nil, timeout: TimeAmount = .seconds(10)) async throws -> ByteBuffer {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let xid = state.withLockedValue { s -> UInt32 in
            let xid = fixedXID ?? s.nextXID
            if fixedXID == nil { s.nextXID &+= 1 }
            s.pending[xid] = promise
            return xid
        }
        var message = channel.allocator.buffer(capacity: 128 + arguments.readableBytes)
        if transport == .tcp { message.writeInteger(UInt32(0)) }
        message.writeRPCCallHeader(RPCCall(xid: xid, program: program, version: version, procedure: procedure,
                                           credential: credentials.encoded()))
        var args = arguments
        message.writeBuffer(&args)
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            let p = self.state.withLockedValue { $0.pending.removeValue(forKey: xid) }
            p?.fail(RPCClientError(reason: .timedOut))
        }
        switch transport {
        case .tcp:
            message.setInteger(RecordMarking.header(length: message.readableBytes - 4), at: 0, as: UInt32.self)
            channel.writeAndFlush(message, promise: nil)
        case .udp:
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: message), promise: nil)
        }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }

    /// Sends raw bytes on the connection (tests use this to send malformed or fragmented records).
    public func sendRaw(_ bytes: ByteBuffer) {
        switch transport {
        case .tcp: channel.writeAndFlush(bytes, promise: nil)
        case .udp: channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: bytes), promise: nil)
        }
    }

    public func close() async {
        try? await channel.close()
    }
}

private final class ClientInbound<In>: ChannelInboundHandler {
    typealias InboundIn = In
    let deliver: @Sendable (In) -> Void
    let closed: @Sendable () -> Void

    init(deliver: @escaping @Sendable (In) -> Void, closed: @escaping @Sendable () -> Void) {
        self.deliver = deliver
        self.closed = closed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deliver(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
