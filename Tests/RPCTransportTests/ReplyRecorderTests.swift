import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import ONCRPC
import Testing
import XDR
@testable import RPCTransport

/// The transport's side of keeping replies beyond the process (`RPCServerCore.replyRecorder`):
/// a procedure that records its replies has each recorded once, before it is sent, and the
/// reply waits for the hold the recorder gives; a retransmission is answered from the cache
/// without a second record; other procedures are not recorded.
@Suite struct ReplyRecorderTests {
    /// Records what it is given, and holds each reply until `releaseAll`.
    final class Recorder: DuplicateReplyRecorder, RPCReplyHold, @unchecked Sendable {
        private let state = NIOLockedValueBox<(recorded: [DuplicateRequestCache.Key], held: [@Sendable (ByteBuffer?) -> Void])>(([], []))

        func record(_ key: DuplicateRequestCache.Key, reply: RPCReplyMessage) -> RPCReplyMessage {
            state.withLockedValue { $0.recorded.append(key) }
            var held = reply
            held.hold = self
            return held
        }

        func whenReleased(allocator: ByteBufferAllocator, _ release: @escaping @Sendable (ByteBuffer?) -> Void) {
            state.withLockedValue { $0.held.append(release) }
        }

        var recorded: [DuplicateRequestCache.Key] { state.withLockedValue { $0.recorded } }

        func releaseAll() {
            for release in state.withLockedValue({ s in defer { s.held = [] }; return s.held }) { release(nil) }
        }
    }

    static func channel(_ traits: RPCProcedureTraits, recorder: Recorder) throws -> EmbeddedChannel {
        var core = RPCServerCore(dispatcher: RPCDispatcher(programs: [TestProgram(procedureTraits: traits)]), cache: DuplicateRequestCache(),
                                 threadPool: NIOThreadPool(numberOfThreads: 1), logger: Logger(label: "test"))
        core.replyRecorder = recorder
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RPCStreamHandler(core: core))
        return channel
    }

    static func replies(_ channel: EmbeddedChannel) throws -> [UInt32] {
        channel.embeddedEventLoop.run()
        var xids: [UInt32] = []
        while var r = try channel.readOutbound(as: ByteBuffer.self) {
            r.moveReaderIndex(forwardBy: 4)
            xids.append(try r.readXDRUInt32())
        }
        return xids
    }

    @Test func aRecordedReplyIsSentOnceItsRecordIsHeldNoLonger() throws {
        let recorder = Recorder()
        let channel = try Self.channel(RPCProcedureTraits(isIdempotent: false, isBlocking: false, recordsReply: true), recorder: recorder)
        defer { _ = try? channel.finish() }
        try channel.writeInbound(TestProgram.call(xid: 7))
        #expect(recorder.recorded.count == 1)
        #expect(try Self.replies(channel).isEmpty, "a reply went out before its record was released")
        recorder.releaseAll()
        #expect(try Self.replies(channel) == [7])
        // The retransmission: the cache's reply, not a second execution or record.
        try channel.writeInbound(TestProgram.call(xid: 7))
        #expect(try Self.replies(channel) == [7])
        #expect(recorder.recorded.count == 1)
    }

    @Test func otherProceduresAreNotRecorded() throws {
        for traits in [RPCProcedureTraits(isIdempotent: false, isBlocking: false), .inline] {
            let recorder = Recorder()
            let channel = try Self.channel(traits, recorder: recorder)
            try channel.writeInbound(TestProgram.call(xid: 8))
            #expect(try Self.replies(channel) == [8])
            #expect(recorder.recorded.isEmpty)
            _ = try channel.finish()
        }
    }
}
