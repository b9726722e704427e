@testable import NLM
import NIOCore
import Testing
import XDR

/// NLM's wire types: the layout of version 4 (64-bit ranges) and of versions 1 and 3 (32-bit),
/// byte for byte, and refusals of what a network can send.
struct NLMCodecTests {
    let lock = NLMLock(callerName: "client-a", fileHandle: [1, 2, 3, 4, 5], ownerHandle: [9, 9], svid: 4242,
                       offset: 0x1_0000_0000, length: 0)

    @Test("a version 4 LOCK call, byte for byte, and back")
    func lockArgumentsVersion4() throws {
        let args = NLMLockArguments(cookie: [0xAB], block: true, exclusive: true, lock: lock, reclaim: false, state: 3)
        var buffer = ByteBuffer()
        buffer.writeNLMLockArguments(args, .lock, version: 4)
        let expected: [UInt8] = [0, 0, 0, 1, 0xAB, 0, 0, 0,             // cookie<>
                                 0, 0, 0, 1, 0, 0, 0, 1,                // block, exclusive
                                 0, 0, 0, 8] + Array("client-a".utf8)   // caller_name
            + [0, 0, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0]                       // fh
            + [0, 0, 0, 2, 9, 9, 0, 0]                                    // oh
            + [0, 0, 0x10, 0x92]                                          // svid 4242
            + [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]            // l_offset, l_len (uint64)
            + [0, 0, 0, 0, 0, 0, 0, 3]                                    // reclaim, state
        #expect(Array(buffer.readableBytesView) == expected)
        #expect(try buffer.readNLMLockArguments(.lock, version: 4) == args)
        try buffer.expectXDREnd()
    }

    @Test("versions 1 and 3 carry 32-bit ranges; a range past 4 GiB becomes one to the end of the file")
    func narrowRanges() throws {
        var buffer = ByteBuffer()
        let narrow = NLMLock(callerName: "c", fileHandle: [1], ownerHandle: [2], svid: 1, offset: 100, length: 50)
        buffer.writeNLMLockArguments(NLMLockArguments(cookie: [], lock: narrow), .unlock, version: 1)
        #expect(buffer.readableBytes == 4 + 8 + 8 + 8 + 4 + 4 + 4)
        #expect(try buffer.readNLMLockArguments(.unlock, version: 1).lock == narrow)
        var wide = ByteBuffer()
        wide.writeNLMLockArguments(NLMLockArguments(cookie: [], lock: lock), .unlock, version: 3)
        let back = try wide.readNLMLockArguments(.unlock, version: 3).lock
        #expect(back.offset == UInt64(UInt32.max) && back.length == 0)
    }

    @Test("TEST: granted is the status alone; denied carries the holder")
    func testResults() throws {
        for version: UInt32 in [1, 3, 4] {
            var buffer = ByteBuffer()
            let holder = NLMHolder(exclusive: true, svid: 7, ownerHandle: [5], offset: 10, length: 20)
            buffer.writeNLMTestResult(cookie: [1, 2], .denied, holder: holder, version: version)
            let r = try buffer.readNLMTestResult(version: version)
            #expect(r.cookie == [1, 2] && r.status == .denied && r.holder == holder)
            buffer.clear()
            buffer.writeNLMTestResult(cookie: [], .granted, holder: holder, version: version)
            #expect(buffer.readableBytes == 8, "a granted TEST carries no holder")
            #expect(try buffer.readNLMTestResult(version: version).holder == nil)
        }
    }

    @Test("hostile input: an oversized netobj or caller name, a truncated lock, an unknown status")
    func refusals() {
        var big = ByteBuffer()
        big.writeXDRUInt32(UInt32(NLM.maxNetobj + 1))
        #expect(throws: XDRError.self) { _ = try big.readNLMLockArguments(.test, version: 4) }
        var truncated = ByteBuffer()
        truncated.writeNLMLockArguments(NLMLockArguments(cookie: [1], exclusive: true, lock: lock), .test, version: 4)
        truncated.moveWriterIndex(to: truncated.writerIndex - 3)
        #expect(throws: XDRError.self) { _ = try truncated.readNLMLockArguments(.test, version: 4) }
        var status = ByteBuffer()
        status.writeXDRVariableOpaque(bytes: [UInt8]())
        status.writeXDRUInt32(42)
        #expect(throws: XDRError.self) { _ = try status.readNLMResult() }
    }
}
