import Glibc
import Logging
import NIOCore
import ONCRPC

/// One TCP connection: records in, replies out in the order they finish. At most
/// `maxInFlightPerConnection` calls execute at once, and nothing more is read while the
/// client is not reading its replies (the channel is not writable); both push back on the
/// client through TCP flow control instead of queueing without bound.
///
/// Replies are written as they finish and flushed once per turn of the event loop: the
/// replies that finished together (a burst of calls answered from the thread pool) leave in
/// one writev instead of one system call each.
final class RPCStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let core: RPCServerCore
    private var inFlight = 0
    private var readHeld = false
    private var flushScheduled = false
    private var context: ChannelHandlerContext?
    /// The counts of this connection's event loop.
    private var counts: EventLoopCallCounts.Slot?
    /// The connection's addresses, read once: `ChannelHandlerContext.remoteAddress` and
    /// `localAddress` ask the kernel (getpeername, getsockname) every time, which was a tenth
    /// of the CPU of a GETATTR.
    private var addresses: (remote: SocketAddress?, local: SocketAddress?)?

    init(core: RPCServerCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        counts = core.loopCounts.slot(for: context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let record = unwrapInboundIn(data)
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let size = record.readableBytes
        let budget = core.budget
        budget.take(size)
        let (remote, local) = addresses ?? {
            let a = (context.channel.remoteAddress, context.channel.localAddress)
            addresses = a
            return a
        }()
        let willReply = core.receive(
            record: record, remote: remote, local: local,
            transport: .tcp, allocator: context.channel.allocator,
            counts: counts ?? core.loopCounts.slot(for: loop)
        ) { reply in
            budget.give(size)
            if loop.inEventLoop {
                bound.value.replyReady(reply)
            } else {
                loop.execute { bound.value.replyReady(reply) }
            }
        }
        if willReply {
            inFlight += 1
        } else {
            budget.give(size)
        }
    }

    private func replyReady(_ reply: RPCReplyMessage) {
        inFlight -= 1
        guard let context else { return }
        let (header, payload) = reply.recordMarked()
        context.write(wrapOutboundOut(header), promise: nil)
        if let payload { context.write(wrapOutboundOut(payload), promise: nil) }
        scheduleFlush(context)
        resumeReadingIfPossible(context)
    }

    /// Flushes after the tasks already queued on the event loop (the other replies that are
    /// ready) have written theirs.
    private func scheduleFlush(_ context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let handler = bound.value
            handler.flushScheduled = false
            handler.context?.flush()
        }
    }

    private var mayRead: Bool {
        inFlight < core.limits.maxInFlightPerConnection && (context?.channel.isWritable ?? false) && core.budget.isAvailable
    }

    private func resumeReadingIfPossible(_ context: ChannelHandlerContext) {
        if readHeld && mayRead {
            readHeld = false
            context.read()
        } else if readHeld {
            waitForBudget(context)
        }
    }

    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            readHeld = true
            waitForBudget(context)
        }
    }

    /// Held back by the budget shared with every connection: resumed, on this connection's
    /// loop, when some other connection's replies give bytes back.
    private var waitingForBudget = false

    private func waitForBudget(_ context: ChannelHandlerContext) {
        guard !waitingForBudget, !core.budget.isAvailable else { return }
        waitingForBudget = true
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        core.budget.whenAvailable {
            loop.execute {
                let handler = bound.value
                handler.waitingForBudget = false
                if let context = handler.context { handler.resumeReadingIfPossible(context) }
            }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReadingIfPossible(context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A peer that resets its connection is ordinary; anything else (a record over the
        // limits, say) is worth an operator's attention.
        let ordinary = (error as? IOError).map { $0.errnoCode == ECONNRESET || $0.errnoCode == EPIPE } ?? false
        core.logger.log(level: ordinary ? .debug : .notice, "rpc connection closed on error", metadata: [
            "rpc.peer": "\(context.remoteAddress.map { "\($0)" } ?? "-")", "rpc.reason": "\(error)",
        ])
        context.close(promise: nil)
    }
}

/// One UDP socket: one datagram per call (RFC 5531 §11 applies to streams only).
final class RPCDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let core: RPCServerCore
    private var inFlight = 0
    private var counts: EventLoopCallCounts.Slot?
    /// The socket's address, read once (see `RPCStreamHandler.addresses`).
    private var local: SocketAddress??

    init(core: RPCServerCore) {
        self.core = core
    }

    func handlerAdded(context: ChannelHandlerContext) {
        counts = core.loopCounts.slot(for: context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard inFlight < core.limits.maxInFlightPerDatagramSocket else {
            core.logger.debug("rpc datagram dropped: too many calls in flight")
            return
        }
        let loop = context.eventLoop
        let channel = context.channel
        let peer = envelope.remoteAddress
        let bound = NIOLoopBound(self, eventLoop: loop)
        let willReply = core.receive(
            record: envelope.data, remote: peer, local: local ?? {
                let a = context.channel.localAddress
                local = .some(a)
                return a
            }(),
            transport: .udp, allocator: channel.allocator, counts: counts ?? core.loopCounts.slot(for: loop)
        ) { reply in
            let datagram = AddressedEnvelope(remoteAddress: peer, data: reply.datagram())
            loop.execute {
                bound.value.inFlight -= 1
                channel.writeAndFlush(datagram, promise: nil)
            }
        }
        if willReply { inFlight += 1 }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A datagram socket stays open: one bad peer (ICMP errors, oversize datagrams) must not
        // stop service for everyone else.
        core.logger.debug("rpc datagram error", metadata: ["rpc.reason": "\(error)"])
    }
}
