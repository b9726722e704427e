import Bench
import NFS3
import NFS3Client
import NIOCore
import Testing

@Suite("Reply checks")
struct ReplyCheckTests {
    let file = PatternedFile(pattern: DataPattern(seed: 7), size: 64 * 1024)

    /// A READ reply as a server would send it, decoded as the bench decodes it.
    func wireReply(data: ByteBuffer, eof: Bool) throws -> NFS3ReadOkay {
        var wire = ByteBuffer()
        wire.writeNFS3ReadReply(NFS3ReadReply(result: .okay(NFS3ReadOkay(attributes: nil, eof: eof, data: data))))
        guard case .okay(let ok) = try wire.readNFS3ReadReply().result else {
            Issue.record("not NFS3_OK")
            throw BenchError(.malformedReply, "")
        }
        return ok
    }

    @Test("a READ of what was written passes")
    func goodRead() throws {
        let reply = try wireReply(data: file.slice(offset: 8192, count: 4096), eof: false)
        try ReplyCheck.read(reply, offset: 8192, count: 4096, file: file)
        let last = try wireReply(data: file.slice(offset: 60 * 1024, count: 4096), eof: true)
        try ReplyCheck.read(last, offset: 60 * 1024, count: 4096, file: file)
    }

    @Test("a READ whose data differs in one byte is a data mismatch")
    func wrongPayload() throws {
        var data = file.slice(offset: 8192, count: 4096)
        let byte = data.getInteger(at: data.readerIndex + 1000, as: UInt8.self)!
        data.setInteger(byte ^ 0x01, at: data.readerIndex + 1000)
        let reply = try wireReply(data: data, eof: false)
        let error = #expect(throws: BenchError.self) { try ReplyCheck.read(reply, offset: 8192, count: 4096, file: self.file) }
        #expect(error?.code == .dataMismatch)
        #expect(error?.tallyKey == "READ data mismatch")
    }

    @Test("a READ of the right bytes from the wrong offset is a data mismatch")
    func wrongOffset() throws {
        let reply = try wireReply(data: file.slice(offset: 4096, count: 4096), eof: false)
        let error = #expect(throws: BenchError.self) { try ReplyCheck.read(reply, offset: 8192, count: 4096, file: self.file) }
        #expect(error?.code == .dataMismatch)
    }

    @Test("a short READ, or a wrong eof, is reported")
    func shortReadAndEOF() throws {
        let short = try wireReply(data: file.slice(offset: 8192, count: 4000), eof: false)
        let countError = #expect(throws: BenchError.self) { try ReplyCheck.read(short, offset: 8192, count: 4096, file: self.file) }
        #expect(countError?.code == .countMismatch)
        let early = try wireReply(data: file.slice(offset: 8192, count: 4096), eof: true)
        let eofError = #expect(throws: BenchError.self) { try ReplyCheck.read(early, offset: 8192, count: 4096, file: self.file) }
        #expect(eofError?.code == .unexpectedReply)
    }

    @Test("a WRITE that took fewer bytes or is less stable than asked is reported; a COMMIT with another verifier too")
    func writeAndCommit() throws {
        let ok = NFS3WriteOkay(wcc: NFS3WCCData(), count: 4096, committed: .fileSync, verifier: NFS3Verifier(9))
        try ReplyCheck.write(ok, count: 4096, stable: .fileSync)
        var short = ok
        short.count = 512
        #expect(throws: BenchError.self) { try ReplyCheck.write(short, count: 4096, stable: .unstable) }
        var unstable = ok
        unstable.committed = .unstable
        #expect(throws: BenchError.self) { try ReplyCheck.write(unstable, count: 4096, stable: .fileSync) }
        try ReplyCheck.commit(NFS3CommitOkay(wcc: NFS3WCCData(), verifier: NFS3Verifier(9)), writeVerifier: NFS3Verifier(9))
        #expect(throws: BenchError.self) {
            try ReplyCheck.commit(NFS3CommitOkay(wcc: NFS3WCCData(), verifier: NFS3Verifier(10)), writeVerifier: NFS3Verifier(9))
        }
    }

    @Test("a listing must name each expected entry exactly once")
    func listing() throws {
        var check = ListingCheck(prefix: Array("e-".utf8), expected: 3)
        for name in [".", "..", "e-00000", "e-00002"] { try check.add(name: Array(name.utf8)) }
        #expect(check.missing == [1])
        #expect(throws: BenchError.self) { try check.finish() }
        #expect(throws: BenchError.self) { try check.add(name: Array("e-00002".utf8)) }
        #expect(throws: BenchError.self) { try check.add(name: Array("e-00003".utf8)) }
        #expect(throws: BenchError.self) { try check.add(name: Array("stranger".utf8)) }
        try check.add(name: Array("e-00001".utf8))
        try check.finish()
    }

    @Test("the client's failures are counted under the keys a run reports")
    func clientFailureKeys() {
        let stale = BenchError(NFS3ClientError.status(.stale, .getattr))
        #expect(stale.tallyKey == "GETATTR NFS3ERR_STALE" && "\(stale)" == "GETATTR: status: NFS3ERR_STALE")
        let closed = BenchError(NFS3ClientError(.rpc, procedure: "READ", "connectionClosed", isFatal: true))
        #expect(closed.tallyKey == "READ connectionClosed" && closed.isFatal)
        let garbled = BenchError(NFS3ClientError(.malformedReply, procedure: "WRITE", "truncated at byte 12"))
        #expect(garbled.tallyKey == "WRITE malformed reply" && garbled.code == .malformedReply)
    }

    @Test("the data pattern depends on the offset, byte by byte")
    func pattern() {
        let p = DataPattern(seed: 1)
        let whole = p.bytes(offset: 0, count: 100)
        #expect(p.bytes(offset: 13, count: 50) == whole.getSlice(at: 13, length: 50)!)
        #expect(p.bytes(offset: 0, count: 8) != DataPattern(seed: 2).bytes(offset: 0, count: 8))
        #expect(p.bytes(offset: 0, count: 8) != p.bytes(offset: 8, count: 8))
    }
}
