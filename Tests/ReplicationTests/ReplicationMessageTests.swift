import FileStore
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
        .refused("not the active"), .hello(name: "old", after: 5, epoch: 1, version: 2),
        .fullCopyBegin(sequence: 77, highestFileID: 1 << 33, files: 12, bytes: 1 << 40),
        .fullCopyEntry(FullCopyEntry(exportID: 0xfeed, path: Array("d/f".utf8), kind: .regular, mode: 0o4755, uid: 1000, gid: 100,
                                     atime: FileTime(seconds: -5, nanoseconds: 999_999_999), mtime: FileTime(seconds: 1 << 33, nanoseconds: 1),
                                     size: 3, fileID: 42)),
        .fullCopyEntry(FullCopyEntry(exportID: 1, path: [], kind: .directory)),
        .fullCopyEntry(FullCopyEntry(exportID: 1, path: Array("s".utf8), kind: .symlink, target: Array("../x".utf8))),
        .fullCopyEntry(FullCopyEntry(exportID: 1, path: Array("c".utf8), kind: .characterDevice, rdev: 0x0103)),
        .fullCopyData(ByteBuffer(bytes: [1, 2, 3, 4, 5])), .fullCopyData(ByteBuffer()), .fullCopyEnd(entries: 4),
        .fullCopyDone(sequence: 77),
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
        #expect(refuses([0, 0, 0, 99, 0, 0, 0, 0]))
        #expect(refuses([0, 0, 0, 3, 0x7f, 0xff, 0xff, 0xff]))
        // An ACK with a trailing byte; a HELLO with a bad magic.
        #expect(refuses([0, 0, 0, 2, 0, 0, 0, 9] + [UInt8](repeating: 0, count: 9)))
        var hello = ByteBuffer()
        hello.writeReplicationMessage(.hello(name: "n", after: 1))
        hello.setInteger(UInt8(ascii: "X"), at: 8)
        #expect(refuses(Array(hello.readableBytesView)))
        // A HELLO of a version this side does not speak (1, or one from the future).
        for version: UInt32 in [1, ReplicationLimits.version + 1] {
            var b = ByteBuffer()
            b.writeReplicationMessage(.hello(name: "n", after: 1, version: version))
            #expect(refuses(Array(b.readableBytesView)), "version \(version)")
        }
        // A full copy entry of an unknown kind, or with a time of a billion nanoseconds; content
        // past the chunk limit.
        var entry = ByteBuffer()
        entry.writeReplicationMessage(.fullCopyEntry(FullCopyEntry(exportID: 1, path: [0x61], kind: .regular)))
        var unknownKind = entry
        unknownKind.setInteger(UInt32(9), at: 8 + 8 + 8)
        #expect(refuses(Array(unknownKind.readableBytesView)))
        var badTime = entry
        badTime.setInteger(UInt32(1_000_000_000), at: 8 + 8 + 8 + 16 + 8 + 8)
        #expect(refuses(Array(badTime.readableBytesView)))
        var big = ByteBuffer()
        big.writeReplicationMessage(.fullCopyData(ByteBuffer(repeating: 1, count: ReplicationLimits.maxFullCopyData + 1)))
        #expect(refuses(Array(big.readableBytesView)))
    }

    @Test func onlyPlainRelativePathsAreTaken() {
        for good in ["", "a", "a/b", "a/.b", "...", "a b/c"] { #expect(isPlainRelativePath(Array(good.utf8)), "\(good)") }
        for bad in ["/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "../a", "a/.."] { #expect(!isPlainRelativePath(Array(bad.utf8)), "\(bad)") }
        #expect(!isPlainRelativePath([0x61, 0, 0x62]))
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

    /// A standby never counts as holding what it was not sent, nor, while it receives a full
    /// copy, anything its old history's ACKs claim; once it says the copy is installed, it holds
    /// the copy's sequence.
    @Test func acknowledgementsCountOnlyForWhatWasSentAndNotDuringAFullCopy() {
        var p = StandbyProgress(name: "b", after: 10)
        let t0 = ContinuousClock.now
        p.sent(sequence: 11, bytes: 100)
        p.acknowledged(50, at: t0)
        #expect(p.acknowledged == 11)
        p.fullCopyStarted()
        #expect(p.copying && !p.caughtUp && p.lagBytes(queued: 0) == 0)
        p.acknowledged(40, at: t0)
        #expect(p.acknowledged == 11)
        p.fullCopyInstalled(30)
        p.sent(sequence: 31, bytes: 100)
        #expect(!p.copying && p.acknowledged == 30 && p.lagBytes(queued: 0) == 100)
        p.acknowledged(31, at: t0)
        #expect(p.acknowledged == 31 && p.lagBytes(queued: 0) == 0)
    }

    /// What a standby publishes while it receives a full copy: not in sync, lagging at least what
    /// the copy still lacks.
    @Test func aStandbyReceivingAFullCopyPublishesItsLag() {
        var s = ReplicationFollower.Status()
        (s.connected, s.inSync, s.lagBytes) = (true, true, 0)
        #expect(s.published.inSync && s.published.lagBytes == 0)
        s.fullCopy = .init(sequence: 9, files: 3, bytes: 10 << 20, entriesDone: 2, bytesDone: 1 << 20)
        #expect(!s.published.inSync)
        #expect(s.published.lagBytes >= 9 << 20)
    }
}
