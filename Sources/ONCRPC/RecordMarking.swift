import NIOCore
import XDR

// RFC 5531 §11 (Record Marking Standard): on a byte stream each record is sent as one or more
// fragments, each preceded by a 4-byte header whose high bit marks the last fragment of the
// record and whose low 31 bits are the fragment's length.

public enum RecordMarking {
    public static let lastFragmentBit: UInt32 = 0x8000_0000

    /// The fragment header for a single-fragment record of `length` bytes.
    @inlinable
    public static func header(length: Int) -> UInt32 {
        lastFragmentBit | UInt32(length)
    }
}

public struct RecordMarkingError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case recordTooLarge(Int)
        case tooManyFragments(Int)
    }
    public var reason: Reason
    public init(reason: Reason) { self.reason = reason }
    public var description: String {
        switch reason {
        case .recordTooLarge(let n): return "RPC record of \(n) bytes exceeds the limit of \(RPCLimits.maxRecordSize)"
        case .tooManyFragments(let n): return "RPC record of more than \(n) fragments"
        }
    }
}

/// Reassembles records from fragments. A pull parser: `decode` returns nil when it needs more
/// bytes and consumes nothing in that case, so it can be fed one byte at a time.
public struct RPCRecordDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    let maxRecordSize: Int
    let maxFragments: Int
    /// Fragments of the current record seen so far (all but the last).
    private var pending: ByteBuffer?
    private var fragments = 0

    public init(maxRecordSize: Int = RPCLimits.maxRecordSize,
                maxFragments: Int = RPCLimits.maxFragmentsPerRecord) {
        self.maxRecordSize = maxRecordSize
        self.maxFragments = maxFragments
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let record = try self.nextRecord(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(record))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        // A partial record at EOF is simply dropped: the peer went away mid-call.
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// Takes the next complete record out of `buffer`, or returns nil and leaves it untouched.
    public mutating func nextRecord(from buffer: inout ByteBuffer) throws -> ByteBuffer? {
        while true {
            guard let mark = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
                return nil
            }
            let length = Int(mark & ~RecordMarking.lastFragmentBit)
            let isLast = mark & RecordMarking.lastFragmentBit != 0
            let total = (pending?.readableBytes ?? 0) + length
            // Check the announced size before waiting for (or allocating) any of it.
            guard total <= maxRecordSize else { throw RecordMarkingError(reason: .recordTooLarge(total)) }
            guard buffer.readableBytes >= 4 + length else { return nil }
            buffer.moveReaderIndex(forwardBy: 4)
            var fragment = buffer.readSlice(length: length)!
            if isLast {
                defer { pending = nil; fragments = 0 }
                guard var record = pending else { return fragment }
                record.writeBuffer(&fragment)
                return record
            }
            fragments += 1
            guard fragments < maxFragments else { throw RecordMarkingError(reason: .tooManyFragments(maxFragments)) }
            if pending == nil {
                // Reserve what the header promises only up to a modest size; growth is bounded by
                // maxRecordSize anyway.
                pending = ByteBuffer()
                pending!.reserveCapacity(min(length * 2, 256 * 1024))
            }
            pending!.writeBuffer(&fragment)
        }
    }
}
