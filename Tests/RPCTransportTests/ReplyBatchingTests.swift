import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import ONCRPC
import Testing
import XDR
@testable import RPCTransport

/// A program whose only procedure answers at once, on the event loop.
struct InlineNullProgram: RPCProgram {
    var program: UInt32 { 200_001 }
    var versions: ClosedRange<UInt32> { 1...1 }
    func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? { procedure == 0 ? .inline : nil }
    func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        .success
    }
}

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
    func call(xid: UInt32) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeRPCCallHeader(RPCCall(xid: xid, program: 200_001, version: 1, procedure: 0,
                                     credential: .none, verifier: .none, arguments: ByteBuffer()))
        return b
    }

    @Test func repliesReadyInOneTurnOfTheLoopLeaveWithOneFlush() throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        let core = RPCServerCore(dispatcher: RPCDispatcher(programs: [InlineNullProgram()]), cache: DuplicateRequestCache(),
                                 threadPool: pool, logger: Logger(label: "test"))
        let counter = FlushCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(RPCStreamHandler(core: core))
        for xid: UInt32 in 1...3 { try channel.writeInbound(call(xid: xid)) }
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
