import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Counts TCP connections per client address and in all, so one client (or a flood of them)
/// cannot take every file descriptor.
public final class ConnectionLimiter: Sendable {
    private struct State {
        var perClient: [String: Int] = [:]
        var total = 0
        /// The connections admitted and not closed yet (for `closeAll`).
        var channels: [ObjectIdentifier: any Channel] = [:]
    }
    private let state = NIOLockedValueBox(State())
    let maxPerClient: Int
    let maxTotal: Int

    public init(maxPerClient: Int, maxTotal: Int) {
        self.maxPerClient = maxPerClient
        self.maxTotal = maxTotal
    }

    /// Admits a new connection from `client`, or says why not.
    func admit(_ client: String, _ channel: any Channel) -> String? {
        state.withLockedValue { s in
            if s.total >= maxTotal { return "the server has \(maxTotal) connections already" }
            if s.perClient[client, default: 0] >= maxPerClient { return "the client has \(maxPerClient) connections already" }
            s.total += 1
            s.perClient[client, default: 0] += 1
            s.channels[ObjectIdentifier(channel)] = channel
            return nil
        }
    }

    func release(_ client: String, _ channel: any Channel) {
        state.withLockedValue { s in
            s.total -= 1
            let n = s.perClient[client, default: 1] - 1
            s.perClient[client] = n > 0 ? n : nil
            s.channels[ObjectIdentifier(channel)] = nil
        }
    }

    /// Closes every connection (a server that stops: the calls still running are not
    /// answered, so their clients send them again to the server that comes next).
    func closeAll() async {
        let channels = state.withLockedValue { Array($0.channels.values) }
        for c in channels { try? await c.close() }
    }

    /// Connections open now.
    public var count: Int { state.withLockedValue { $0.total } }
}

/// First in every TCP pipeline: admits the connection against the limiter (closing it
/// at once when over a limit), releases it when it closes, and closes it when idle.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private let limiter: ConnectionLimiter
    private let logger: Logger
    private var client: String?

    init(limiter: ConnectionLimiter, logger: Logger) {
        self.limiter = limiter
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        let address = context.remoteAddress?.ipAddress ?? "-"
        if let refusal = limiter.admit(address, context.channel) {
            logger.warning("connection refused", metadata: ["rpc.peer": "\(address)", "rpc.reason": "\(refusal)"])
            context.close(promise: nil)
            return
        }
        client = address
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let client { limiter.release(client, context.channel) }
        client = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            logger.debug("closing idle connection", metadata: ["rpc.peer": "\(client ?? "-")"])
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
