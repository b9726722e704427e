import Journal
import NIOCore
import Replication
import Testing

/// The link's codec without sockets: every message round-trips, fed whole and byte by byte; a
/// body that breaks its rules is refused.
@Suite struct ReplicationMessageTests {
    static let frame = JournalFormat.frame(JournalRecord(sequence: 7, exportID: 1, epoch: 3,
                                                         change: .write(fileID: 9, path: Array("f".utf8), offset: 4, data: [1, 2, 3])))
    static let messages: [ReplicationMessage] = [
        .hello(name: "node-b", after: 42, epoch: 7), .hello(name: "node-c", after: 0), .ack(durable: 1 << 40), .frame(frame),
        .position(appended: 99, lagBytes: 1234, inSync: true), .fullCopyNeeded(oldest: 100, appended: 200, reason: "gone"),
        .refused("not the active"),
    ]

    @Test func everyMessageRoundTripsWholeAndByteByByte() throws {
        for message in Self.messages {
            var whole = ByteBuffer()
            whole.writeReplicationMessage(message)
            let bytes = Array(whole.readableBytesView)
            #expect(try whole.readReplicationMessage() == message)
            #expect(whole.readableBytes == 0)
            // Fed byte by byte: nothing until the last byte, the buffer left alone meanwhile.
            var partial = ByteBuffer()
            for (i, b) in bytes.enumerated() {
                partial.writeInteger(b)
                let decoded = try partial.readReplicationMessage()
                #expect((decoded != nil) == (i == bytes.count - 1), "\(message) at byte \(i)")
                if let decoded { #expect(decoded == message) }
            }
        }
    }

    @Test func badMessagesAreRefused() {
        func refuses(_ bytes: [UInt8]) -> Bool {
            var b = ByteBuffer(bytes: bytes)
            do {
                _ = try b.readReplicationMessage()
                return false
            } catch {
                return true
            }
        }
        // An unknown kind, a length past the limit (refused before any body arrives).
        #expect(refuses([0, 0, 0, 9, 0, 0, 0, 0]))
        #expect(refuses([0, 0, 0, 3, 0x7f, 0xff, 0xff, 0xff]))
        // An ACK with a trailing byte; a HELLO with a bad magic.
        #expect(refuses([0, 0, 0, 2, 0, 0, 0, 9] + [UInt8](repeating: 0, count: 9)))
        var hello = ByteBuffer()
        hello.writeReplicationMessage(.hello(name: "n", after: 1))
        hello.setInteger(UInt8(ascii: "X"), at: 8)
        #expect(refuses(Array(hello.readableBytesView)))
    }

    @Test func aFrameIsCheckedAsAReaderChecksIt() {
        #expect((try? JournalFormat.record(inFrame: Self.frame).get())?.sequence == 7)
        var flipped = Self.frame
        flipped.setInteger(flipped.getInteger(at: 20, as: UInt8.self)! ^ 0x40, at: 20)
        guard case .failure(.checksumMismatch) = JournalFormat.record(inFrame: flipped) else {
            Issue.record("a flipped bit passed")
            return
        }
        var short = Self.frame
        short.moveWriterIndex(to: short.writerIndex - 1)
        guard case .failure = JournalFormat.record(inFrame: short) else {
            Issue.record("a short frame passed")
            return
        }
    }

    @Test func aStandbysProgressGivesLagAndInSync() {
        var policy = StandbyProgress.Policy()
        policy.ackWindow = .seconds(1)
        policy.maxLagBytes = 1000
        var p = StandbyProgress(name: "b", after: 10, policy: policy)
        let t0 = ContinuousClock.now
        // Catching up: never in sync.
        p.sent(sequence: 11, bytes: 300)
        p.sent(sequence: 12, bytes: 300)
        p.acknowledged(11, at: t0)
        #expect(p.lagBytes(queued: 0) == 300)
        #expect(!p.inSync(at: t0, queued: 0))
        p.caughtUp(true)
        #expect(p.inSync(at: t0, queued: 0))
        // Too much queued, or no acknowledgement for longer than the window: not in sync.
        #expect(!p.inSync(at: t0, queued: 800))
        #expect(!p.inSync(at: t0 + .milliseconds(1500), queued: 0))
        p.acknowledged(12, at: t0 + .milliseconds(1500))
        #expect(p.lagBytes(queued: 0) == 0)
        #expect(p.acknowledged == 12)
        #expect(p.inSync(at: t0 + .milliseconds(1600), queued: 0))
        // An old acknowledgement moves nothing back.
        p.acknowledged(5, at: t0 + .milliseconds(1700))
        #expect(p.acknowledged == 12)
    }
}
