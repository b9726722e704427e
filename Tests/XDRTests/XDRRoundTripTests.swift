import NIOCore
import Testing
import XDR

@Suite struct XDRRoundTripTests {
    @Test(arguments: [UInt32(0), 1, 0x7fff_ffff, 0x8000_0000, .max])
    func uint32RoundTrip(value: UInt32) throws {
        var b = ByteBuffer()
        #expect(b.writeXDRUInt32(value) == 4)
        #expect(b.getInteger(at: 0, endianness: .big, as: UInt32.self) == value)
        #expect(try b.readXDRUInt32() == value)
        try b.expectXDREnd()
    }

    @Test(arguments: [Int64.min, -1, 0, 1, Int64.max])
    func int64RoundTrip(value: Int64) throws {
        var b = ByteBuffer()
        #expect(b.writeXDRInt64(value) == 8)
        #expect(try b.readXDRInt64() == value)
        #expect(b.readableBytes == 0)
    }

    @Test func signedIntegersAreTwosComplementBigEndian() throws {
        var b = ByteBuffer()
        b.writeXDRInt32(-2)
        #expect(Array(b.readableBytesView) == [0xff, 0xff, 0xff, 0xfe])
        #expect(try b.readXDRInt32() == -2)
    }

    @Test func boolRoundTripAndStrictness() throws {
        var b = ByteBuffer()
        b.writeXDRBool(true)
        b.writeXDRBool(false)
        b.writeXDRUInt32(2)
        #expect(try b.readXDRBool() == true)
        #expect(try b.readXDRBool() == false)
        #expect(throws: XDRError(.invalidBool, "2")) { try b.readXDRBool() }
    }

    @Test(arguments: 0...9)
    func variableOpaqueRoundTripIsPaddedWithZeros(length: Int) throws {
        let payload = ByteBuffer(bytes: (0..<length).map { UInt8($0 + 1) })
        var b = ByteBuffer()
        let written = b.writeXDRVariableOpaque(payload)
        #expect(written == 4 + (length + 3) / 4 * 4)
        #expect(b.readableBytes == written)
        // The fill bytes are zero (RFC 4506 §3).
        let tail = b.getBytes(at: 4 + length, length: written - 4 - length) ?? []
        #expect(tail.allSatisfy { $0 == 0 })
        let back = try b.readXDRVariableOpaque(limit: 64)
        #expect(back == payload)
        try b.expectXDREnd()
    }

    @Test func opaqueIsAZeroCopySlice() throws {
        var b = ByteBuffer()
        b.writeXDRVariableOpaque(bytes: [UInt8](repeating: 7, count: 4096))
        let slice = try b.readXDRVariableOpaque(limit: 8192)
        // A slice shares storage with its parent: the same base address, offset by the header.
        let parentBase = b.withUnsafeReadableBytes { $0.baseAddress! } - b.readerIndex
        let sliceBase = slice.withUnsafeReadableBytes { $0.baseAddress! }
        #expect(sliceBase == parentBase + 4)
    }

    @Test func stringRoundTrip() throws {
        var b = ByteBuffer()
        b.writeXDRString("héllo")
        #expect(b.readableBytes == 4 + 8)
        #expect(try b.readXDRString(limit: 255) == "héllo")
    }

    @Test func optionalAndArrayRoundTrip() throws {
        var b = ByteBuffer()
        b.writeXDROptional(UInt32(5)) { $0.writeXDRUInt32($1) }
        b.writeXDROptional(UInt32?.none) { $0.writeXDRUInt32($1) }
        b.writeXDRArray([UInt32(1), 2, 3]) { $0.writeXDRUInt32($1) }
        #expect(try b.readXDROptional { try $0.readXDRUInt32() } == 5)
        #expect(try b.readXDROptional { try $0.readXDRUInt32() } == nil)
        #expect(try b.readXDRArray(limit: 16) { try $0.readXDRUInt32() } == [1, 2, 3])
        try b.expectXDREnd()
    }

    enum Color: UInt32 { case red = 1, green = 2 }

    @Test func enumRejectsUndeclaredValues() throws {
        var b = ByteBuffer()
        b.writeXDREnum(Color.green)
        b.writeXDRUInt32(3)
        #expect(try b.readXDREnum(Color.self) == .green)
        #expect(throws: XDRError.self) { try b.readXDREnum(Color.self) }
    }
}

@Suite struct XDRGarbageTests {
    @Test func everyTruncationOfAnOpaqueThrows() throws {
        var full = ByteBuffer()
        full.writeXDRVariableOpaque(bytes: [1, 2, 3, 4, 5])
        for cut in 0..<full.readableBytes {
            var b = full.getSlice(at: 0, length: cut)!
            #expect(throws: XDRError.self) { try b.readXDRVariableOpaque(limit: 100) }
        }
    }

    @Test func lengthAboveLimitIsRejectedBeforeReading() throws {
        var b = ByteBuffer()
        b.writeXDRUInt32(0xffff_fff0)  // claims ~4 GiB; nothing follows
        #expect(throws: XDRError(.lengthExceedsLimit, "opaque<64> got 4294967280")) {
            try b.readXDRVariableOpaque(limit: 64)
        }
    }

    @Test func nonZeroPaddingIsRejected() throws {
        var b = ByteBuffer()
        b.writeXDRUInt32(1)
        b.writeBytes([0xaa, 0, 1, 0])
        #expect(throws: XDRError(.nonZeroPadding)) { try b.readXDRVariableOpaque(limit: 8) }
    }

    @Test func arrayCountLargerThanTheRecordIsRejectedWithoutReserving() throws {
        var b = ByteBuffer()
        b.writeXDRUInt32(1_000_000)
        b.writeXDRUInt32(1)
        #expect(throws: XDRError.self) { try b.readXDRArray(limit: 2_000_000) { try $0.readXDRUInt32() } }
        var c = ByteBuffer()
        c.writeXDRUInt32(17)
        #expect(throws: XDRError(.lengthExceedsLimit, "array<16> got 17")) {
            try c.readXDRArray(limit: 16) { try $0.readXDRUInt32() }
        }
    }

    @Test func trailingBytesAreDetected() throws {
        var b = ByteBuffer()
        b.writeXDRUInt32(1)
        b.writeXDRUInt32(2)
        _ = try b.readXDRUInt32()
        #expect(throws: XDRError.self) { try b.expectXDREnd() }
    }

    @Test func truncatedIntegersThrow() throws {
        for n in 0..<8 {
            var b = ByteBuffer(bytes: [UInt8](repeating: 1, count: n))
            #expect(throws: XDRError.self) { try b.readXDRUInt64() }
            if n < 4 {
                var c = ByteBuffer(bytes: [UInt8](repeating: 1, count: n))
                #expect(throws: XDRError.self) { try c.readXDRUInt32() }
            }
        }
    }
}
