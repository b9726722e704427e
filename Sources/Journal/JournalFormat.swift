import Glibc
import NIOCore
import XDR

/// The on-disk format of one journal segment:
///
///     header   "SNFSJNL\0" (8 bytes), format version (uint32, big-endian), reserved (uint32, 0)
///     frames   length (uint32), CRC-32C of the record (uint32), the record (XDR, `length` bytes)
///     zeros    in a preallocated segment, after the last frame (a frame header of zeros ends it)
///
/// Version 2 adds the HA epoch to every record (`JournalRecord.epoch`); version 1 segments are
/// still read (their records have epoch 0). Version 3 adds the REPLY record (a duplicate
/// request cache entry, `FileChange.reply`), the other records unchanged: version 1 and 2
/// segments are still read, and a REPLY in one of them is damage. Writers write version 3; a
/// standby must run a version that reads it before its active does (upgrade standbys first).
///
/// A reader stops at the first frame that is incomplete (a torn append at a crash), fails its
/// checksum, does not decode, or does not continue the sequence; everything before it is good.
/// A good frame whose epoch is below the highest epoch already read is a deposed active's
/// append: it is reported (`JournalDamage.staleEpoch`) and skipped, and reading goes on.
package enum JournalFormat {
    package static let magic: [UInt8] = Array("SNFSJNL".utf8) + [0]
    package static let version: UInt32 = 3
    package static let readableVersions: ClosedRange<UInt32> = 1...3
    package static let headerSize = 16
    package static let frameHeaderSize = 8

    package static func header(version: UInt32 = version) -> [UInt8] {
        var b = ByteBuffer()
        b.writeBytes(magic)
        b.writeXDRUInt32(version)
        b.writeXDRUInt32(0)
        return Array(b.readableBytesView)
    }

    /// The framed bytes of one record.
    package static func frame(_ record: JournalRecord, version: UInt32 = version) -> ByteBuffer {
        var capacity = 128
        if case .write(_, let path, _, let data) = record.change { capacity += path.count + data.count }
        return frame(capacity: capacity) { $0.writeJournalRecord(record, version: version) }
    }

    /// The framed bytes of a write record whose data is in a received buffer (copied once,
    /// into the frame).
    package static func frameWrite(sequence: UInt64, exportID: UInt64, epoch: UInt64 = 0, fileID: UInt64, path: [UInt8],
                                  offset: UInt64, data: ByteBuffer) -> ByteBuffer {
        frame(capacity: 128 + path.count + data.readableBytes) {
            $0.writeJournalWriteRecord(sequence: sequence, exportID: exportID, epoch: epoch, fileID: fileID, path: path,
                                       offset: offset, data: data)
        }
    }

    /// The record in one whole frame (length, CRC-32C, record), checked as a reader checks it:
    /// the length matches, the checksum holds, the record decodes with nothing after it. A
    /// replicated frame is checked so before it is appended (`offset` only names the place).
    package static func record(inFrame frame: ByteBuffer, version: UInt32 = version, offset: Int = 0) -> Result<JournalRecord, JournalDamage> {
        guard let length = frame.getInteger(at: frame.readerIndex, as: UInt32.self).map(Int.init),
              let crc = frame.getInteger(at: frame.readerIndex + 4, as: UInt32.self),
              length == frame.readableBytes - frameHeaderSize else {
            return .failure(.tornTail(offset: offset))
        }
        guard length <= JournalLimits.maxRecord else { return .failure(.oversizedFrame(offset: offset, length: length)) }
        var body = frame.getSlice(at: frame.readerIndex + frameHeaderSize, length: length)!
        guard body.withUnsafeReadableBytes({ CRC32C.checksum($0) }) == crc else { return .failure(.checksumMismatch(offset: offset)) }
        do {
            let record = try body.readJournalRecord(version: version)
            try body.expectXDREnd()
            return .success(record)
        } catch {
            return .failure(.undecodable(offset: offset, reason: "\(error)"))
        }
    }

    static func frame(capacity: Int, _ writeRecord: (inout ByteBuffer) -> Int) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(frameHeaderSize + capacity)
        // The record goes straight after room for its length and checksum, filled in after.
        out.writeXDRUInt32(0)
        out.writeXDRUInt32(0)
        _ = writeRecord(&out)
        let length = out.readableBytes - frameHeaderSize
        let crc = out.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[frameHeaderSize...])) }
        out.setInteger(UInt32(length), at: 0)
        out.setInteger(crc, at: 4)
        return out
    }
}

/// What is wrong with a journal segment, and where.
package enum JournalDamage: Error, Hashable, Sendable, CustomStringConvertible {
    case badHeader
    case unsupportedVersion(UInt32)
    /// The last frame is incomplete: an append that a crash interrupted.
    case tornTail(offset: Int)
    case checksumMismatch(offset: Int)
    case oversizedFrame(offset: Int, length: Int)
    case undecodable(offset: Int, reason: String)
    case sequenceOutOfOrder(offset: Int, sequence: UInt64, previous: UInt64)
    /// Reading the segment failed (an I/O error of the durable disk).
    case unreadable(offset: Int, errno: Int32)
    /// A good record stamped with an epoch below one already read: appended by an active that
    /// had been deposed. Not applied; reading goes on after it.
    case staleEpoch(offset: Int, sequence: UInt64, epoch: UInt64, highest: UInt64)

    package var description: String {
        switch self {
        case .badHeader: return "not a journal segment (bad header)"
        case .unsupportedVersion(let v): return "journal format version \(v) is not supported"
        case .tornTail(let o): return "torn record at byte \(o) (an append interrupted by a crash)"
        case .checksumMismatch(let o): return "checksum mismatch in the record at byte \(o)"
        case .oversizedFrame(let o, let n): return "record at byte \(o) claims \(n) bytes, more than any record can have"
        case .undecodable(let o, let r): return "record at byte \(o) does not decode: \(r)"
        case .sequenceOutOfOrder(let o, let s, let p): return "record at byte \(o) has sequence \(s) after \(p)"
        case .unreadable(let o, let e): return "read failed after byte \(o): errno \(e)"
        case .staleEpoch(let o, let s, let e, let h):
            return "record at byte \(o) (sequence \(s)) is of epoch \(e), after epoch \(h): a deposed active's, not applied"
        }
    }

    /// A torn tail is the normal result of a crash during an append; anything else means the
    /// medium or something else damaged the journal.
    package var isTornTail: Bool {
        if case .tornTail = self { return true }
        return false
    }

    /// A rejected record, not damage of the medium: reading went on after it.
    package var isStaleEpoch: Bool {
        if case .staleEpoch = self { return true }
        return false
    }
}

/// The epoch check that runs across the segments of a journal: the highest epoch read so far,
/// and the records rejected for being below it.
package struct JournalEpochs: Sendable {
    package var highest: UInt64
    package var rejected: [JournalDamage] = []

    package init(highest: UInt64 = 0) { self.highest = highest }

    /// Whether `record` may be applied; a stale one is noted (found at `offset`). Epoch 0 (no
    /// cluster) is never stale and raises nothing.
    mutating func admit(_ record: JournalRecord, offset: Int) -> Bool {
        guard record.epoch != 0 else { return true }
        guard record.epoch >= highest else {
            rejected.append(.staleEpoch(offset: offset, sequence: record.sequence, epoch: record.epoch, highest: highest))
            return false
        }
        highest = record.epoch
        return true
    }
}

/// The result of reading a segment: the good records, the damage that stopped the reader if
/// any, the length of the good prefix (where appending may resume), and the records rejected
/// for a stale epoch (`JournalDamage.staleEpoch`, not in `records`).
package struct JournalScan: Sendable {
    package var records: [JournalRecord]
    package var damage: JournalDamage?
    package var validLength: Int
    package var rejected: [JournalDamage] = []
}

/// Incremental decoding of one segment (the header, then frame after frame), in the style of a
/// NIO decoder: `next` returns nil for "need more bytes" and leaves the buffer alone, so a
/// segment of any size is read through a window of one record at most.
package struct JournalFrameDecoder: Sendable {
    package enum Step: Sendable {
        /// A good record, and the bytes of its frame.
        case record(JournalRecord, frameBytes: Int)
        /// A good frame whose record a deposed active appended (`JournalDamage.staleEpoch`):
        /// consumed, not to be applied.
        case rejected(JournalDamage, frameBytes: Int)
        /// The segment is damaged here; nothing after this is read.
        case damage(JournalDamage)
        /// The frames end here: the rest of the segment is zeros, written before any record
        /// (a preallocated segment).
        case end
    }

    /// Bytes of the segment consumed so far: the good prefix.
    package private(set) var offset = 0
    private var last: UInt64
    /// The format version of the segment (known once its header is read).
    package private(set) var version = JournalFormat.version
    /// The epoch check, carried from segment to segment by whoever reads several.
    package var epochs: JournalEpochs

    package init(after previousSequence: UInt64 = 0, epochs: JournalEpochs = JournalEpochs()) {
        last = previousSequence
        self.epochs = epochs
    }

    /// The next record or damage from `buffer`, or nil when it holds no complete frame yet.
    package mutating func next(_ buffer: inout ByteBuffer) -> Step? {
        if offset == 0 {
            guard buffer.readableBytes >= JournalFormat.headerSize else { return nil }
            let header = buffer.readBytes(length: JournalFormat.headerSize)!
            guard Array(header[0..<8]) == JournalFormat.magic, header[12..<16].allSatisfy({ $0 == 0 }) else {
                return .damage(.badHeader)
            }
            let version = UInt32(header[8]) << 24 | UInt32(header[9]) << 16 | UInt32(header[10]) << 8 | UInt32(header[11])
            guard JournalFormat.readableVersions.contains(version) else { return .damage(.unsupportedVersion(version)) }
            self.version = version
            offset = JournalFormat.headerSize
        }
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self).map(Int.init),
              let crc = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self) else { return nil }
        // No record is empty: a frame header of zeros is where a preallocated segment's frames end.
        if length == 0 && crc == 0 { return .end }
        guard length <= JournalLimits.maxRecord else { return .damage(.oversizedFrame(offset: offset, length: length)) }
        guard buffer.readableBytes >= JournalFormat.frameHeaderSize + length else { return nil }
        let record: JournalRecord
        switch JournalFormat.record(inFrame: buffer.getSlice(at: buffer.readerIndex, length: JournalFormat.frameHeaderSize + length)!,
                                    version: version, offset: offset) {
        case .success(let r): record = r
        case .failure(let damage): return .damage(damage)
        }
        guard record.sequence > last else {
            return .damage(.sequenceOutOfOrder(offset: offset, sequence: record.sequence, previous: last))
        }
        last = record.sequence
        let frameBytes = JournalFormat.frameHeaderSize + length
        buffer.moveReaderIndex(forwardBy: frameBytes)
        defer { offset += frameBytes }
        guard epochs.admit(record, offset: offset) else { return .rejected(epochs.rejected.last!, frameBytes: frameBytes) }
        return .record(record, frameBytes: frameBytes)
    }

    /// What the bytes left over at the end of the segment mean: none, the header missing, or a
    /// frame an append did not finish.
    package func end(leftover: Int) -> JournalDamage? {
        if offset == 0 { return .badHeader }
        return leftover > 0 ? .tornTail(offset: offset) : nil
    }
}

package enum JournalReader {
    /// Reads a whole segment held in memory. Never throws and never traps: damage is reported,
    /// and everything before it is returned.
    package static func scan(_ bytes: [UInt8], after previousSequence: UInt64 = 0) -> JournalScan {
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = JournalFrameDecoder(after: previousSequence)
        var records: [JournalRecord] = []
        while let step = decoder.next(&buffer) {
            switch step {
            case .record(let r, _): records.append(r)
            case .rejected: break
            case .damage(let d):
                return JournalScan(records: records, damage: d, validLength: decoder.offset, rejected: decoder.epochs.rejected)
            case .end:
                return JournalScan(records: records, damage: nil, validLength: decoder.offset, rejected: decoder.epochs.rejected)
            }
        }
        return JournalScan(records: records, damage: decoder.end(leftover: buffer.readableBytes), validLength: decoder.offset,
                           rejected: decoder.epochs.rejected)
    }

    /// Reads the segment at `path` record by record, through a window of a few MiB at most:
    /// memory does not grow with the segment. Returns the damage that stopped it, if any.
    @discardableResult
    package static func forEach(segment path: String, after previousSequence: UInt64 = 0,
                               _ body: (JournalRecord, Int) throws -> Void) rethrows -> JournalDamage? {
        var epochs = JournalEpochs()
        return try forEach(segment: path, after: previousSequence, epochs: &epochs, body)
    }

    /// `forEach` with the epoch check carried in from the segments before (and out to the next);
    /// records of a stale epoch are not given to `body`, and are added to `epochs.rejected`.
    @discardableResult
    package static func forEach(segment path: String, after previousSequence: UInt64 = 0, epochs: inout JournalEpochs,
                               _ body: (JournalRecord, Int) throws -> Void) rethrows -> JournalDamage? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .badHeader }
        defer { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: readChunk)
        var decoder = JournalFrameDecoder(after: previousSequence, epochs: epochs)
        defer { epochs = decoder.epochs }
        while true {
            while let step = decoder.next(&buffer) {
                switch step {
                case .record(let r, let bytes): try body(r, bytes)
                case .rejected: break
                case .damage(let d): return d
                case .end: return nil
                }
            }
            buffer.discardReadBytes()
            var failure: Int32 = 0
            let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: readChunk) { p -> Int in
                while true {
                    let n = read(fd, p.baseAddress, p.count)
                    if n < 0, errno == EINTR { continue }
                    if n < 0 { failure = errno }
                    return max(0, n)
                }
            }
            if failure != 0 { return .unreadable(offset: decoder.offset, errno: failure) }
            if n == 0 { return decoder.end(leftover: buffer.readableBytes) }
        }
    }

    static let readChunk = 1 << 20
}
