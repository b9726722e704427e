import FileStore
import Foundation
import Journal
import Logging
import NIOCore
import Testing

/// The REPLY record (format version 3): a duplicate request cache entry in the journal. It
/// round-trips, is damage in a segment of an older version (which still reads otherwise),
/// changes nothing a checkpoint applies, and recovery keeps only the newest of them.
@Suite struct ReplyRecordTests {
    static func reply(_ sequence: UInt64, _ n: Int = 0) -> JournalRecord {
        JournalRecord(sequence: sequence, exportID: 0, epoch: 3, change: .reply(entry: [UInt8](repeating: UInt8(n & 0xff), count: 60 + n % 7)))
    }

    @Test func aReplyRecordRoundTrips() throws {
        for r in [Self.reply(1), Self.reply(2, 200), JournalRecord(sequence: 3, exportID: 7, change: .reply(entry: []))] {
            var b = ByteBuffer()
            b.writeJournalRecord(r)
            #expect(try b.readJournalRecord() == r)
            #expect(b.readableBytes == 0)
            #expect(try JournalFormat.record(inFrame: JournalFormat.frame(r)).get() == r)
        }
        // Beyond the bound of an entry: refused, not allocated.
        var b = ByteBuffer()
        b.writeJournalRecord(JournalRecord(sequence: 4, exportID: 0, change: .reply(entry: [UInt8](repeating: 0, count: JournalLimits.maxReplyEntry + 4))))
        #expect(throws: (any Error).self) { try b.readJournalRecord() }
    }

    /// Segments written before the REPLY record existed read as they did; a REPLY in one is
    /// damage (no writer of that version made it), and what comes before it is good.
    @Test func olderVersionsReadAndHaveNoReplies() {
        let v2 = JournalEpochTests.segment(JournalFormatTests.sample, version: 2)
        #expect(JournalReader.scan(v2).records == JournalFormatTests.sample)
        let withReply = JournalFormatTests.sample.prefix(3) + [Self.reply(4)]
        let scan = JournalReader.scan(JournalEpochTests.segment(Array(withReply), version: 2))
        #expect(scan.records == Array(JournalFormatTests.sample.prefix(3)))
        guard case .undecodable? = scan.damage else {
            Issue.record("a reply in a version 2 segment read as \(String(describing: scan.damage))")
            return
        }
        let v3 = JournalEpochTests.segment(Array(withReply))
        #expect(v3[11] == 3)
        #expect(JournalReader.scan(v3).records == Array(withReply))
    }

    /// A checkpoint skips replies (they belong to no export: no copy is made for export 0) and
    /// applies the changes around them; the journal's replies are summarized newest first
    /// within the bound, and are not counted as any export's records.
    @Test func checkpointsSkipRepliesAndRecoveryKeepsTheNewest() throws {
        let directory = JournalDirectory(root: NSTemporaryDirectory() + "swiftnfs-replies-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, logger: Logger(label: "test"))
        defer { writer.stop() }
        writer.append(exportID: 7, .create(fileID: 2, path: Array("d".utf8), type: .directory, mode: 0o755, uid: 0, gid: 0, rdev: 0, target: []))
        for n in 0..<10 { writer.append(exportID: 0, Self.reply(0, n).change) }
        writer.append(exportID: 7, .create(fileID: 3, path: Array("d/f".utf8), type: .regular, mode: 0o644, uid: 0, gid: 0, rdev: 0, target: []))
        writer.append(exportID: 0, Self.reply(0, 10).change)
        try writer.waitDurable(writer.lastAppended)

        let summary = JournalLog.summary(directory, after: 0, replyLimit: 4)
        #expect(summary.replies == (7...10).map { Self.reply(0, $0).change }.map { if case .reply(let e) = $0 { e } else { [] } })
        #expect(summary.recordsByExport == [7: 2])
        #expect(JournalLog.summary(directory, after: 0).replies.count == 11)

        let report = try Checkpointer(directory: directory, writer: writer, logger: Logger(label: "test"), syncServed: {}).checkpoint()
        #expect(report.appliedThrough == writer.lastAppended)
        #expect(FileManager.default.fileExists(atPath: directory.copyDirectory(exportID: 7) + "/d/f"))
        #expect(!FileManager.default.fileExists(atPath: directory.copyDirectory(exportID: 0)))
    }

    /// The replies a checkpoint passes outlive the segments it deletes (`CheckpointedReplies`):
    /// the newest within the bound, added to those kept by the checkpoints before.
    @Test func checkpointsKeepTheNewestReplies() throws {
        let directory = JournalDirectory(root: NSTemporaryDirectory() + "swiftnfs-replies-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.segmentSize = 4096  // several segments, so that the checkpoints delete some
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits, logger: Logger(label: "test"))
        defer { writer.stop() }
        let checkpointer = Checkpointer(directory: directory, writer: writer, logger: Logger(label: "test"), syncServed: {})
        func entries(_ range: ClosedRange<Int>) -> [[UInt8]] {
            range.map { if case .reply(let e) = Self.reply(0, $0).change { e } else { [] } }
        }
        #expect(CheckpointedReplies.load(directory).isEmpty)
        for n in 0..<100 { writer.append(exportID: 0, Self.reply(0, n).change) }
        try writer.waitDurable(writer.lastAppended)
        try checkpointer.checkpoint()
        #expect(JournalLog.summary(directory, after: directory.checkpointedSequence()).replies.isEmpty)
        #expect(CheckpointedReplies.load(directory).entries == entries(0...99))

        for n in 100..<150 { writer.append(exportID: 0, Self.reply(0, n).change) }
        try writer.waitDurable(writer.lastAppended)
        try checkpointer.checkpoint()
        #expect(CheckpointedReplies.load(directory).entries == entries(0...149))
        #expect(CheckpointedReplies.load(directory, limit: 30).entries == entries(120...149))
        // A checkpoint that passes no reply leaves the file as it is.
        writer.append(exportID: 7, .create(fileID: 2, path: Array("d".utf8), type: .directory, mode: 0o755, uid: 0, gid: 0, rdev: 0, target: []))
        try writer.waitDurable(writer.lastAppended)
        try checkpointer.checkpoint()
        #expect(CheckpointedReplies.load(directory).entries == entries(0...149))
    }
}
