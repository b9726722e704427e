import FileStore
import Foundation
import Journal
import Logging
import NIOCore
import Testing

/// The HA epoch in journal records (format version 2): stamped by the writer, read back, and a
/// record of a lower epoch after a higher one (a deposed active's late append) reported and not
/// applied. Version 1 segments still read, as epoch 0.
@Suite struct JournalEpochTests {
    static func record(_ sequence: UInt64, epoch: UInt64) -> JournalRecord {
        JournalRecord(sequence: sequence, exportID: 7, epoch: epoch,
                      change: .write(fileID: 3, path: Array("f".utf8), offset: sequence * 10, data: Array("epoch \(epoch)".utf8)))
    }

    static func segment(_ records: [JournalRecord], version: UInt32 = JournalFormat.version) -> [UInt8] {
        var bytes = JournalFormat.header(version: version)
        for r in records { bytes += Array(JournalFormat.frame(r, version: version).readableBytesView) }
        return bytes
    }

    @Test func theEpochRoundTrips() throws {
        let r = Self.record(4, epoch: 1_234_567)
        var b = ByteBuffer()
        b.writeJournalRecord(r)
        #expect(try b.readJournalRecord() == r)
        #expect(b.readableBytes == 0)
    }

    /// A segment written before the epoch existed reads as it did, every record of epoch 0.
    @Test func aVersion1SegmentStillReads() {
        let records = JournalFormatTests.sample
        let bytes = Self.segment(records, version: 1)
        #expect(bytes[11] == 1)
        let scan = JournalReader.scan(bytes)
        #expect(scan.damage == nil)
        #expect(scan.records == records)
        #expect(scan.records.allSatisfy { $0.epoch == 0 })
        #expect(scan.validLength == bytes.count)
    }

    /// Epoch 5, then 9 (a takeover), then a late record of 5 (the deposed active), then 9 again:
    /// the late one is reported and left out, the rest read on.
    @Test func aLowerEpochAfterAHigherIsRejected() {
        let records = [Self.record(1, epoch: 5), Self.record(2, epoch: 5), Self.record(3, epoch: 9),
                       Self.record(4, epoch: 5), Self.record(5, epoch: 9)]
        let bytes = Self.segment(records)
        let scan = JournalReader.scan(bytes)
        #expect(scan.damage == nil)
        #expect(scan.validLength == bytes.count)
        #expect(scan.records.map(\.sequence) == [1, 2, 3, 5])
        let offset = JournalFormat.headerSize + records.prefix(3).reduce(0) { $0 + JournalFormat.frame($1).readableBytes }
        #expect(scan.rejected == [.staleEpoch(offset: offset, sequence: 4, epoch: 5, highest: 9)])
        #expect(scan.rejected.allSatisfy { $0.isStaleEpoch })
    }

    /// Epoch 0 (a server outside any cluster) is never rejected and raises nothing.
    @Test func epochZeroIsNeverStale() {
        let scan = JournalReader.scan(Self.segment([Self.record(1, epoch: 9), Self.record(2, epoch: 0), Self.record(3, epoch: 9)]))
        #expect(scan.records.map(\.sequence) == [1, 2, 3])
        #expect(scan.rejected.isEmpty)
    }

    /// The check carries across segments: the writer stamps its epoch, a later segment with a
    /// lower epoch (written here by a second writer, as a deposed active would) is reported by
    /// the journal's reader and its records are not given to replay.
    @Test func theWriterStampsItsEpochAndTheLogRejectsAcrossSegments() throws {
        let directory = JournalDirectory(root: NSTemporaryDirectory() + "swiftnfs-epoch-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let logger = Logger(label: "test")
        let first = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, logger: logger)
        first.epoch.store(9, ordering: .relaxed)
        first.append(exportID: 7, Self.record(0, epoch: 0).change)
        first.appendWrite(exportID: 7, fileID: 3, path: Array("f".utf8), offset: 0, data: ByteBuffer(string: "x"))
        try first.waitDurable(first.lastAppended)
        first.stop()
        // The deposed active's writer: it continues the sequence in a segment of its own.
        let second = try JournalWriter(directory: directory, lastSequence: 2, uncheckpointedBytes: 0, logger: logger)
        second.epoch.store(5, ordering: .relaxed)
        second.append(exportID: 7, Self.record(0, epoch: 0).change)
        try second.waitDurable(second.lastAppended)
        second.stop()
        #expect(directory.segments().count == 2)

        var applied: [JournalRecord] = []
        let result = JournalLog.forEach(directory, after: 0) { r, _ in applied.append(r) }
        #expect(applied.map(\.sequence) == [1, 2])
        #expect(applied.allSatisfy { $0.epoch == 9 })
        #expect(result.damages.map(\.damage) == [.staleEpoch(offset: JournalFormat.headerSize, sequence: 3, epoch: 5, highest: 9)])
        #expect(result.lastSequence == 3)
    }
}
