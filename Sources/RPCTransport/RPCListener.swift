import Logging
import NIOCore
import NIOPosix
import ONCRPC

#if canImport(Glibc)
import Glibc
#endif

/// TCP and UDP sockets on one port, both serving the same programs: on the main address, on
/// further addresses (the IPv6 side of an IPv4 listener, say), and, for the portmapper, on a
/// Unix domain stream socket (rpcbind's `/run/rpcbind.sock`, where local programs register).
public struct RPCListener: Sendable {
    public let tcp: Channel
    public let udp: Channel
    /// The sockets on the further addresses and the local socket.
    let more: [Channel]
    let connections: ConnectionLimiter
    /// What each event loop received and handed off (shared by every listener of one core).
    public let calls: EventLoopCallCounts
    /// The addresses listened on: the main one first, then those of `alsoOn` that could be bound.
    public let hosts: [String]
    /// The local socket listened on, removed at the close.
    public let localSocket: String?

    public var port: Int { tcp.localAddress?.port ?? 0 }
    /// TCP connections open now.
    public var openConnections: Int { connections.count }

    /// Binds both sockets on `host`, then on each of `alsoOn` (an IPv6 wildcard there takes
    /// IPv6 only, as its IPv4 side is `host`'s) and on `localSocket`; those that cannot be bound
    /// (no IPv6 on the host, say) are logged and left out. With `port` 0 the kernel picks the
    /// TCP port and every other socket takes the same one.
    public static func bind(host: String, port: Int, core: RPCServerCore, group: EventLoopGroup,
                            alsoOn: [String] = [], localSocket: String? = nil) async throws -> RPCListener {
        let limits = core.limits
        let limiter = ConnectionLimiter(maxPerClient: limits.maxConnectionsPerClient, maxTotal: limits.maxConnections)
        let (tcp, udp) = try await bindPair(host: host, port: port, v6Only: false, core: core, limiter: limiter, group: group)
        let boundPort = tcp.localAddress?.port ?? port
        var more: [Channel] = []
        var hosts = [host]
        for extra in alsoOn {
            do {
                let (t, u) = try await bindPair(host: extra, port: boundPort, v6Only: extra.contains(":"), core: core,
                                                limiter: limiter, group: group)
                more += [t, u]
                hosts.append(extra)
            } catch {
                core.logger.notice("not listening on a further address", metadata: [
                    "rpc.address": "\(extra)", "rpc.port": "\(boundPort)", "rpc.error": "\(error)",
                ])
            }
        }
        var local: String?
        if let localSocket, let channel = await bindLocal(path: localSocket, core: core, limiter: limiter, group: group) {
            more.append(channel)
            local = localSocket
        }
        return RPCListener(tcp: tcp, udp: udp, more: more, connections: limiter, calls: core.loopCounts, hosts: hosts,
                           localSocket: local)
    }

    static func streamBootstrap(core: RPCServerCore, limiter: ConnectionLimiter, group: EventLoopGroup) -> ServerBootstrap {
        let limits = core.limits
        let logger = core.logger
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
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
    }

    static func bindPair(host: String, port: Int, v6Only: Bool, core: RPCServerCore, limiter: ConnectionLimiter,
                         group: EventLoopGroup) async throws -> (Channel, Channel) {
        let v6 = ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only)
        var stream = streamBootstrap(core: core, limiter: limiter, group: group).childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        if v6Only { stream = stream.serverChannelOption(v6, value: 1) }
        let tcp = try await stream.bind(host: host, port: port).get()
        let boundPort = tcp.localAddress?.port ?? port
        do {
            var datagrams = DatagramBootstrap(group: group)
            if v6Only { datagrams = datagrams.channelOption(v6, value: 1) }
            let udp = try await datagrams
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: RPCLimits.maxDatagramSize))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RPCDatagramHandler(core: core))
                    }
                }
                .bind(host: host, port: boundPort).get()
            return (tcp, udp)
        } catch {
            try? await tcp.close()
            throw error
        }
    }

    /// A stream socket at `path`, readable and writable by every local user as rpcbind's is.
    /// A socket file left by a server that is gone is replaced; one that answers is not.
    static func bindLocal(path: String, core: RPCServerCore, limiter: ConnectionLimiter, group: EventLoopGroup) async -> Channel? {
        if let probe = try? await ClientBootstrap(group: group).connect(unixDomainSocketPath: path).get() {
            try? await probe.close()
            core.logger.warning("another program serves the local socket; not listening on it", metadata: ["rpc.socket": "\(path)"])
            return nil
        }
        do {
            let channel = try await streamBootstrap(core: core, limiter: limiter, group: group)
                .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            chmod(path, 0o666)
            return channel
        } catch {
            core.logger.notice("not listening on the local socket", metadata: ["rpc.socket": "\(path)", "rpc.error": "\(error)"])
            return nil
        }
    }

    /// Closes every TCP connection, listening on (a node that stops being the active: its
    /// clients reconnect, to the node that holds the address now).
    public func closeConnections() async {
        await connections.closeAll()
    }

    /// Stops listening and closes every connection.
    public func close() async {
        try? await tcp.close()
        try? await udp.close()
        for c in more { try? await c.close() }
        if let localSocket { unlink(localSocket) }
        await connections.closeAll()
    }
}
