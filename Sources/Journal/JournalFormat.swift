import NIOCore
import XDR

/// The on-disk format of one journal segment:
///
///     header   "SNFSJNL\0" (8 bytes), format version (uint32, big-endian), reserved (uint32, 0)
///     frames   length (uint32), CRC-32C of the record (uint32), the record (XDR, `length` bytes)
///
/// A reader stops at the first frame that is incomplete (a torn append at a crash), fails its
/// checksum, does not decode, or does not continue the sequence; everything before it is good.
public enum JournalFormat {
    public static let magic: [UInt8] = Array("SNFSJNL".utf8) + [0]
    public static let version: UInt32 = 1
    public static let headerSize = 16
    public static let frameHeaderSize = 8

    public static func header() -> [UInt8] {
        var b = ByteBuffer()
        b.writeBytes(magic)
        b.writeXDRUInt32(version)
        b.writeXDRUInt32(0)
        return Array(b.readableBytesView)
    }

    /// The framed bytes of one record.
    public static func frame(_ record: JournalRecord) -> ByteBuffer {
        var out = ByteBuffer()
        if case .write(_, let path, _, let data) = record.change {
            out.reserveCapacity(frameHeaderSize + 64 + path.count + data.count)
        }
        // The record goes straight after room for its length and checksum, filled in after.
        out.writeXDRUInt32(0)
        out.writeXDRUInt32(0)
        out.writeJournalRecord(record)
        let length = out.readableBytes - frameHeaderSize
        let crc = out.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[frameHeaderSize...])) }
        out.setInteger(UInt32(length), at: 0)
        out.setInteger(crc, at: 4)
        return out
    }
}

/// What is wrong with a journal segment, and where.
public enum JournalDamage: Hashable, Sendable, CustomStringConvertible {
    case badHeader
    case unsupportedVersion(UInt32)
    /// The last frame is incomplete: an append that a crash interrupted.
    case tornTail(offset: Int)
    case checksumMismatch(offset: Int)
    case oversizedFrame(offset: Int, length: Int)
    case undecodable(offset: Int, reason: String)
    case sequenceOutOfOrder(offset: Int, sequence: UInt64, previous: UInt64)

    public var description: String {
        switch self {
        case .badHeader: return "not a journal segment (bad header)"
        case .unsupportedVersion(let v): return "journal format version \(v) is not supported"
        case .tornTail(let o): return "torn record at byte \(o) (an append interrupted by a crash)"
        case .checksumMismatch(let o): return "checksum mismatch in the record at byte \(o)"
        case .oversizedFrame(let o, let n): return "record at byte \(o) claims \(n) bytes, more than any record can have"
        case .undecodable(let o, let r): return "record at byte \(o) does not decode: \(r)"
        case .sequenceOutOfOrder(let o, let s, let p): return "record at byte \(o) has sequence \(s) after \(p)"
        }
    }

    /// A torn tail is the normal result of a crash during an append; anything else means the
    /// medium or something else damaged the journal.
    public var isTornTail: Bool {
        if case .tornTail = self { return true }
        return false
    }
}

/// The result of reading a segment: the good records, the damage that stopped the reader if
/// any, and the length of the good prefix (where appending may resume).
public struct JournalScan: Sendable {
    public var records: [JournalRecord]
    public var damage: JournalDamage?
    public var validLength: Int
}

public enum JournalReader {
    /// Reads a whole segment. Never throws and never traps: damage is reported, and everything
    /// before it is returned.
    public static func scan(_ bytes: [UInt8], after previousSequence: UInt64 = 0) -> JournalScan {
        guard bytes.count >= JournalFormat.headerSize, Array(bytes[0..<8]) == JournalFormat.magic,
              bytes[12..<16].allSatisfy({ $0 == 0 }) else {
            return JournalScan(records: [], damage: .badHeader, validLength: 0)
        }
        let version = UInt32(bytes[8]) << 24 | UInt32(bytes[9]) << 16 | UInt32(bytes[10]) << 8 | UInt32(bytes[11])
        guard version == JournalFormat.version else {
            return JournalScan(records: [], damage: .unsupportedVersion(version), validLength: 0)
        }
        var records: [JournalRecord] = []
        var offset = JournalFormat.headerSize
        var last = previousSequence
        func u32(_ at: Int) -> Int {
            Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
        }
        while offset < bytes.count {
            guard offset + JournalFormat.frameHeaderSize <= bytes.count else {
                return JournalScan(records: records, damage: .tornTail(offset: offset), validLength: offset)
            }
            let length = u32(offset)
            let crc = UInt32(u32(offset + 4))
            guard length <= JournalLimits.maxRecord else {
                return JournalScan(records: records, damage: .oversizedFrame(offset: offset, length: length), validLength: offset)
            }
            let start = offset + JournalFormat.frameHeaderSize
            guard start + length <= bytes.count else {
                return JournalScan(records: records, damage: .tornTail(offset: offset), validLength: offset)
            }
            let body = bytes[start..<(start + length)]
            guard body.withUnsafeBytes({ CRC32C.checksum($0) }) == crc else {
                return JournalScan(records: records, damage: .checksumMismatch(offset: offset), validLength: offset)
            }
            var buffer = ByteBuffer(bytes: body)
            let record: JournalRecord
            do {
                record = try buffer.readJournalRecord()
                try buffer.expectXDREnd()
            } catch {
                return JournalScan(records: records, damage: .undecodable(offset: offset, reason: "\(error)"), validLength: offset)
            }
            guard record.sequence > last else {
                return JournalScan(records: records, damage: .sequenceOutOfOrder(offset: offset, sequence: record.sequence, previous: last),
                                   validLength: offset)
            }
            last = record.sequence
            records.append(record)
            offset = start + length
        }
        return JournalScan(records: records, damage: nil, validLength: offset)
    }
}
