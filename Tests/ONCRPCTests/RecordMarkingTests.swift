import NIOCore
import ONCRPC
import Testing
import XDR

@Suite struct RecordMarkingTests {
    func fragment(_ bytes: [UInt8], last: Bool) -> [UInt8] {
        let mark = UInt32(bytes.count) | (last ? RecordMarking.lastFragmentBit : 0)
        return [UInt8(mark >> 24), UInt8(mark >> 16 & 0xff), UInt8(mark >> 8 & 0xff), UInt8(mark & 0xff)] + bytes
    }

    /// Feeds `stream` one byte at a time and collects the records that come out.
    func feedByteByByte(_ stream: [UInt8], decoder: inout RPCRecordDecoder) throws -> [[UInt8]] {
        var buffer = ByteBuffer()
        var out: [[UInt8]] = []
        for byte in stream {
            buffer.writeInteger(byte)
            while let record = try decoder.nextRecord(from: &buffer) {
                out.append(Array(record.readableBytesView))
            }
        }
        #expect(buffer.readableBytes == 0)
        return out
    }

    @Test func singleAndMultiFragmentRecordsByteByByte() throws {
        let a: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let b1: [UInt8] = [9, 9, 9, 9]
        let b2: [UInt8] = []
        let b3: [UInt8] = [10, 11, 12, 13, 14, 15, 16, 17]
        let stream = fragment(a, last: true) + fragment(b1, last: false) + fragment(b2, last: false)
            + fragment(b3, last: true) + fragment(a, last: true)
        var decoder = RPCRecordDecoder()
        let records = try feedByteByByte(stream, decoder: &decoder)
        #expect(records == [a, b1 + b2 + b3, a])
    }

    @Test func needMoreDataLeavesTheBufferAlone() throws {
        var decoder = RPCRecordDecoder()
        var buffer = ByteBuffer(bytes: fragment([1, 2, 3, 4], last: true).dropLast())
        let before = buffer
        #expect(try decoder.nextRecord(from: &buffer) == nil)
        #expect(buffer == before)
    }

    @Test func oversizedRecordIsRefusedFromItsHeaderAlone() throws {
        var decoder = RPCRecordDecoder(maxRecordSize: 1024)
        var buffer = ByteBuffer()
        buffer.writeInteger(RecordMarking.lastFragmentBit | 2048)
        #expect(throws: RecordMarkingError(reason: .recordTooLarge(2048))) {
            try decoder.nextRecord(from: &buffer)
        }
    }

    @Test func oversizedAcrossFragmentsIsRefused() throws {
        var decoder = RPCRecordDecoder(maxRecordSize: 10)
        var buffer = ByteBuffer(bytes: fragment([UInt8](repeating: 1, count: 8), last: false)
            + fragment([UInt8](repeating: 1, count: 8), last: true))
        #expect(throws: RecordMarkingError.self) { try decoder.nextRecord(from: &buffer) }
    }

    @Test func tooManyFragmentsIsRefused() throws {
        var decoder = RPCRecordDecoder(maxRecordSize: 1 << 20, maxFragments: 4)
        var stream: [UInt8] = []
        for _ in 0..<10 { stream += fragment([0, 0, 0, 0], last: false) }
        var buffer = ByteBuffer(bytes: stream)
        #expect(throws: RecordMarkingError(reason: .tooManyFragments(4))) {
            try decoder.nextRecord(from: &buffer)
        }
    }
}
