import FileStore
import Foundation
import Journal
import NIOCore
import Testing

@Suite struct JournalFormatTests {
    static let sample: [JournalRecord] = [
        JournalRecord(sequence: 1, exportID: 7, change: .create(fileID: 2, path: Array("dir".utf8), type: .directory,
                                                              mode: 0o755, uid: 1000, gid: 100, rdev: 0, target: [])),
        JournalRecord(sequence: 2, exportID: 7, change: .create(fileID: 3, path: Array("dir/f".utf8), type: .regular,
                                                              mode: 0o644, uid: 1000, gid: 100, rdev: 0, target: [])),
        JournalRecord(sequence: 3, exportID: 7, change: .write(fileID: 3, path: Array("dir/f".utf8), offset: 5_000_000_000,
                                                             data: Array("hello, journal".utf8))),
        JournalRecord(sequence: 5, exportID: 7, change: .setAttributes(fileID: 3, path: Array("dir/f".utf8), AttributeValues(
            mode: 0o600, size: 3, mtime: FileTime(seconds: 1_700_000_000, nanoseconds: 42)))),
        JournalRecord(sequence: 6, exportID: 7, change: .create(fileID: 4, path: Array("dir/l".utf8), type: .symlink,
                                                              mode: 0o777, uid: 0, gid: 0, rdev: 0, target: Array("../x".utf8))),
        JournalRecord(sequence: 7, exportID: 7, change: .link(fileID: 3, existing: Array("dir/f".utf8), new: Array("g".utf8))),
        JournalRecord(sequence: 8, exportID: 7, change: .rename(fileID: 3, from: Array("g".utf8), to: Array("dir/h".utf8))),
        JournalRecord(sequence: 9, exportID: 7, change: .remove(fileID: 4, path: Array("dir/l".utf8), isDirectory: false)),
        JournalRecord(sequence: 10, exportID: 7, change: .checkpoint(through: 9)),
    ]

    static func segment(_ records: [JournalRecord]) -> [UInt8] {
        var bytes = JournalFormat.header()
        for r in records { bytes += Array(JournalFormat.frame(r).readableBytesView) }
        return bytes
    }

    @Test func recordsRoundTrip() throws {
        for r in Self.sample {
            var b = ByteBuffer()
            b.writeJournalRecord(r)
            #expect(try b.readJournalRecord() == r)
            #expect(b.readableBytes == 0)
        }
    }

    /// A write framed from a received buffer is byte for byte the frame of its `.write` change.
    @Test func aWriteFramedFromABufferIsTheSameFrame() {
        for count in [0, 1, 3, 4, 4096, 65_537] {
            let data = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            var received = ByteBuffer(bytes: [9, 9] + data)
            received.moveReaderIndex(forwardBy: 2)  // a slice of a larger buffer, as a WRITE's payload is
            let record = JournalRecord(sequence: 42, exportID: 7, change: .write(fileID: 3, path: Array("dir/f".utf8),
                                                                                 offset: 1 << 40, data: data))
            let fromBuffer = JournalFormat.frameWrite(sequence: 42, exportID: 7, fileID: 3, path: Array("dir/f".utf8),
                                                      offset: 1 << 40, data: received)
            #expect(fromBuffer == JournalFormat.frame(record), "\(count) bytes")
        }
    }

    @Test func aWholeSegmentReadsBack() {
        let bytes = Self.segment(Self.sample)
        let scan = JournalReader.scan(bytes)
        #expect(scan.records == Self.sample)
        #expect(scan.damage == nil)
        #expect(scan.validLength == bytes.count)
    }

    /// The incremental decoder fed one byte at a time, as a segment read in small chunks
    /// would feed it: the same records, and nil ("need more") until each frame is whole.
    @Test func theDecoderTakesASegmentByteByByte() {
        let bytes = Self.segment(Self.sample)
        var decoder = JournalFrameDecoder()
        var buffer = ByteBuffer()
        var records: [JournalRecord] = []
        for b in bytes {
            buffer.writeInteger(b)
            while let step = decoder.next(&buffer) {
                guard case .record(let r, let frameBytes) = step else { Issue.record("damage \(step)"); return }
                #expect(frameBytes == JournalFormat.frame(r).readableBytes)
                records.append(r)
            }
        }
        #expect(records == Self.sample)
        #expect(decoder.end(leftover: buffer.readableBytes) == nil)
        #expect(decoder.offset == bytes.count)
    }

    /// A segment file read through the bounded window gives what reading it whole gives, for
    /// every truncation of it.
    @Test func aSegmentFileIsStreamedLikeAWholeRead() throws {
        let bytes = Self.segment(Self.sample)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-seg-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for cut in stride(from: 0, through: bytes.count, by: 7) {
            try Data(bytes.prefix(cut)).write(to: URL(fileURLWithPath: path))
            var streamed: [JournalRecord] = []
            let damage = JournalReader.forEach(segment: path) { r, _ in streamed.append(r) }
            let whole = JournalReader.scan(Array(bytes.prefix(cut)))
            #expect(streamed == whole.records, "cut at \(cut)")
            #expect(damage == whole.damage, "cut at \(cut)")
        }
    }

    @Test func everyTruncationRecoversTheWholeRecordsBeforeIt() {
        let bytes = Self.segment(Self.sample)
        // Frame boundaries: where each record ends.
        var ends: [Int] = [JournalFormat.headerSize]
        for r in Self.sample { ends.append(ends.last! + JournalFormat.frame(r).readableBytes) }
        for cut in JournalFormat.headerSize..<bytes.count {
            let scan = JournalReader.scan(Array(bytes[0..<cut]))
            let whole = ends.filter { $0 <= cut }.count - 1
            #expect(scan.records == Array(Self.sample.prefix(whole)), "cut at \(cut)")
            #expect(scan.validLength == ends[whole])
            if ends.contains(cut) { #expect(scan.damage == nil) } else { #expect(scan.damage?.isTornTail == true) }
        }
    }

    @Test func everyFlippedByteIsDetectedOrHarmless() {
        let bytes = Self.segment(Self.sample)
        var detected = 0
        for i in 0..<bytes.count {
            var damaged = bytes
            damaged[i] ^= 0x40
            let scan = JournalReader.scan(damaged)
            // Whatever the reader returns is a prefix of what was written: never an invented record.
            #expect(Array(Self.sample.prefix(scan.records.count)) == scan.records, "flip at \(i)")
            if scan.damage != nil { detected += 1 }
        }
        // Every byte is covered by the header check, a frame length, or a checksum.
        #expect(detected == bytes.count)
    }

    /// A preallocated segment: its frames, then zeros to the end. The zeros end it cleanly
    /// (no damage), whether read whole or streamed; a frame cut short inside the zeros is
    /// damage, and everything before it is read.
    @Test func zerosAfterTheFramesEndASegment() throws {
        let frames = Self.segment(Self.sample)
        let whole = JournalReader.scan(frames + [UInt8](repeating: 0, count: 3000))
        #expect(whole.records == Self.sample && whole.damage == nil && whole.validLength == frames.count)
        let path = NSTemporaryDirectory() + "swiftnfs-zeros-\(UUID().uuidString).jnl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(frames + [UInt8](repeating: 0, count: (2 << 20) + 17)).write(to: URL(fileURLWithPath: path))
        var streamed: [JournalRecord] = []
        #expect(JournalReader.forEach(segment: path) { r, _ in streamed.append(r) } == nil)
        #expect(streamed == Self.sample)
        // The last frame's header made it, its record did not: damage, the rest is read.
        let last = Array(JournalFormat.frame(Self.sample.last!).readableBytesView)
        let cut = Self.segment(Array(Self.sample.dropLast())) + Array(last.prefix(12)) + [UInt8](repeating: 0, count: 4096)
        let torn = JournalReader.scan(cut)
        #expect(torn.records == Array(Self.sample.dropLast()) && torn.damage != nil)
    }

    @Test func sequencesMustIncrease() {
        var records = Self.sample
        records[3].sequence = 2
        let scan = JournalReader.scan(Self.segment(records))
        #expect(scan.records.count == 3)
        #expect(scan.damage == .sequenceOutOfOrder(offset: scan.validLength, sequence: 2, previous: 3))
    }

    @Test func aForeignFileIsNotAJournal() {
        #expect(JournalReader.scan(Array("hello world, not a journal".utf8)).damage == .badHeader)
        var bytes = Self.segment([])
        bytes[11] = 9
        #expect(JournalReader.scan(bytes).damage == .unsupportedVersion(9))
    }

    @Test func crc32cKnownValue() {
        // RFC 3720 appendix B.4: 32 bytes of zeros.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}
