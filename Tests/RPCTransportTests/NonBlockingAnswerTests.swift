import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import ONCRPC
import Testing
import XDR
@testable import RPCTransport

@Suite struct NonBlockingAnswerTests {
    /// Sends calls with `xids` (odd ones answered without blocking) through a stream handler
    /// whose thread pool never runs anything
    /// (it is not started, so it refuses work); returns each reply's accept status and result.
    func exchange(_ xids: [UInt32]) throws -> [UInt32: (UInt32, UInt32?)] {
        let core = RPCServerCore(dispatcher: RPCDispatcher(programs: [TestProgram(procedureTraits: .read, answersWithoutBlocking: { $0 % 2 == 1 })]), cache: DuplicateRequestCache(),
                                 threadPool: NIOThreadPool(numberOfThreads: 1), logger: Logger(label: "test"))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RPCStreamHandler(core: core))
        for xid in xids { try channel.writeInbound(TestProgram.call(xid: xid)) }
        channel.embeddedEventLoop.run()
        var replies: [UInt32: (UInt32, UInt32?)] = [:]
        while var r = try channel.readOutbound(as: ByteBuffer.self) {
            r.moveReaderIndex(forwardBy: 4)
            let xid = try r.readXDRUInt32()
            r.moveReaderIndex(forwardBy: 4 * 2 + 4 * 2)  // reply, MSG_ACCEPTED, verifier (flavor, empty body)
            let status = try r.readXDRUInt32()
            replies[xid] = (status, r.readableBytes >= 4 ? try r.readXDRUInt32() : nil)
        }
        _ = try channel.finish()
        return replies
    }

    @Test func answersWithoutBlockingSkipThePoolAndTheRestGoThere() throws {
        let replies = try exchange([1, 2, 3])
        // Answered on the event loop: SUCCESS with the non-blocking result.
        #expect(replies[1]?.0 == 0 && replies[1]?.1 == 1)
        #expect(replies[3]?.0 == 0 && replies[3]?.1 == 1)
        // Sent to the pool, which refused it: SYSTEM_ERR.
        #expect(replies[2]?.0 == 5 && replies[2]?.1 == nil)
    }
}
