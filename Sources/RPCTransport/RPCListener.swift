import Logging
import NIOCore
import NIOPosix
import ONCRPC

/// A TCP and a UDP socket on the same address and port, both serving the same programs.
public struct RPCListener: Sendable {
    public let tcp: Channel
    public let udp: Channel
    let connections: ConnectionLimiter

    public var port: Int { tcp.localAddress?.port ?? 0 }
    /// TCP connections open now.
    public var openConnections: Int { connections.count }

    /// Binds both sockets. With `port` 0 the kernel picks the TCP port and UDP takes the same one.
    public static func bind(host: String, port: Int, core: RPCServerCore,
                            group: EventLoopGroup) async throws -> RPCListener {
        let limits = core.limits
        let limiter = ConnectionLimiter(maxPerClient: limits.maxConnectionsPerClient, maxTotal: limits.maxConnections)
        let logger = core.logger
        let tcp = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: limits.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(ConnectionGuard(limiter: limiter, logger: logger))
                    try channel.pipeline.syncOperations.addHandler(
                        ByteToMessageHandler(RPCRecordDecoder(maxRecordSize: limits.maxRecordSize,
                                                              maxFragments: limits.maxFragmentsPerRecord)))
                    try channel.pipeline.syncOperations.addHandler(RPCStreamHandler(core: core))
                }
            }
            .bind(host: host, port: port).get()
        let boundPort = tcp.localAddress?.port ?? port
        do {
            let udp = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: RPCLimits.maxDatagramSize))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RPCDatagramHandler(core: core))
                    }
                }
                .bind(host: host, port: boundPort).get()
            return RPCListener(tcp: tcp, udp: udp, connections: limiter)
        } catch {
            try? await tcp.close()
            throw error
        }
    }

    /// Stops listening and closes every connection.
    public func close() async {
        try? await tcp.close()
        try? await udp.close()
        await connections.closeAll()
    }
}
