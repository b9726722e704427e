import NIOCore
import XDR

// RFC 1813 §3.3.21 COMMIT:
//   struct COMMIT3args { nfs_fh3 file; offset3 offset; count3 count; };
//   struct COMMIT3resok { wcc_data file_wcc; writeverf3 verf; };
//   struct COMMIT3resfail { wcc_data file_wcc; };

public struct NFS3CommitCall: Hashable, Sendable {
    public var file: NFS3FileHandle
    public var offset: UInt64
    /// Bytes to commit from `offset`; 0 means to the end of the file.
    public var count: UInt32
    public init(file: NFS3FileHandle, offset: UInt64, count: UInt32) { self.file = file; self.offset = offset; self.count = count }
}

public struct NFS3CommitOkay: Hashable, Sendable {
    public var wcc: NFS3WCCData
    public var verifier: NFS3Verifier
    public init(wcc: NFS3WCCData, verifier: NFS3Verifier) { self.wcc = wcc; self.verifier = verifier }
}

public struct NFS3CommitReply: Sendable {
    public var result: NFS3Result<NFS3CommitOkay, NFS3WCCData>
    public init(result: NFS3Result<NFS3CommitOkay, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3CommitCall() throws -> NFS3CommitCall {
        NFS3CommitCall(file: try readNFS3FileHandle(), offset: try readXDRUInt64(), count: try readXDRUInt32())
    }

    @discardableResult
    public mutating func writeNFS3CommitCall(_ call: NFS3CommitCall) -> Int {
        writeNFS3FileHandle(call.file) + writeXDRUInt64(call.offset) + writeXDRUInt32(call.count)
    }

    public mutating func readNFS3CommitReply() throws -> NFS3CommitReply {
        NFS3CommitReply(result: try readNFS3Result(okay: { b in
            NFS3CommitOkay(wcc: try b.readNFS3WCCData(), verifier: try b.readNFS3Verifier())
        }, fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3CommitReply(_ reply: NFS3CommitReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3WCCData(ok.wcc) + b.writeNFS3Verifier(ok.verifier)
        }, fail: { $0.writeNFS3WCCData($1) })
    }
}
