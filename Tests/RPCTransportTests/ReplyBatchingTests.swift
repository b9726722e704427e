import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import ONCRPC
import Testing
import XDR
@testable import RPCTransport

/// Counts the flushes that reach the socket.
final class FlushCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var flushes = 0

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }
}

@Suite struct ReplyBatchingTests {
    @Test func repliesReadyInOneTurnOfTheLoopLeaveWithOneFlush() throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        let core = RPCServerCore(dispatcher: RPCDispatcher(programs: [TestProgram(procedureTraits: .inline)]), cache: DuplicateRequestCache(),
                                 threadPool: pool, logger: Logger(label: "test"))
        let counter = FlushCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(RPCStreamHandler(core: core))
        for xid: UInt32 in 1...3 { try channel.writeInbound(TestProgram.call(xid: xid)) }
        #expect(counter.flushes == 0)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)
        var xids: [UInt32] = []
        while var reply = try channel.readOutbound(as: ByteBuffer.self) {
            reply.moveReaderIndex(forwardBy: 4)  // the record mark
            xids.append(try reply.readXDRUInt32())
        }
        #expect(xids == [1, 2, 3])
        _ = try channel.finish()
    }
}
