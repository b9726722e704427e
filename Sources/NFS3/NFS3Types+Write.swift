import NIOCore
import XDR

// RFC 1813 §3.3.7 WRITE:
//   struct WRITE3args { nfs_fh3 file; offset3 offset; count3 count; stable_how stable; opaque data<>; };
//   struct WRITE3resok { wcc_data file_wcc; count3 count; stable_how committed; writeverf3 verf; };
//   struct WRITE3resfail { wcc_data file_wcc; };
//
// `data` is a slice of the received record: it goes to pwrite without being copied.

public struct NFS3WriteCall: Sendable {
    public var file: NFS3FileHandle
    public var offset: UInt64
    public var count: UInt32
    public var stable: NFS3StableHow
    public var data: ByteBuffer
    public init(file: NFS3FileHandle, offset: UInt64, count: UInt32, stable: NFS3StableHow, data: ByteBuffer) {
        self.file = file; self.offset = offset; self.count = count; self.stable = stable; self.data = data
    }
}

public struct NFS3WriteOkay: Hashable, Sendable {
    public var wcc: NFS3WCCData
    public var count: UInt32
    public var committed: NFS3StableHow
    public var verifier: NFS3Verifier
    public init(wcc: NFS3WCCData, count: UInt32, committed: NFS3StableHow, verifier: NFS3Verifier) {
        self.wcc = wcc; self.count = count; self.committed = committed; self.verifier = verifier
    }
}

public struct NFS3WriteReply: Sendable {
    public var result: NFS3Result<NFS3WriteOkay, NFS3WCCData>
    public init(result: NFS3Result<NFS3WriteOkay, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3WriteCall() throws -> NFS3WriteCall {
        let file = try readNFS3FileHandle()
        let offset = try readXDRUInt64()
        let count = try readXDRUInt32()
        let stable = try readXDREnum(NFS3StableHow.self)
        let data = try readXDRVariableOpaque(limit: NFS3.maxWriteSize)
        return NFS3WriteCall(file: file, offset: offset, count: count, stable: stable, data: data)
    }

    @discardableResult
    public mutating func writeNFS3WriteCall(_ call: NFS3WriteCall) -> Int {
        writeNFS3FileHandle(call.file) + writeXDRUInt64(call.offset) + writeXDRUInt32(call.count)
            + writeXDREnum(call.stable) + writeXDRVariableOpaque(call.data)
    }

    public mutating func readNFS3WriteReply() throws -> NFS3WriteReply {
        NFS3WriteReply(result: try readNFS3Result(okay: { b in
            NFS3WriteOkay(wcc: try b.readNFS3WCCData(), count: try b.readXDRUInt32(),
                          committed: try b.readXDREnum(NFS3StableHow.self), verifier: try b.readNFS3Verifier())
        }, fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3WriteReply(_ reply: NFS3WriteReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3WCCData(ok.wcc) + b.writeXDRUInt32(ok.count) + b.writeXDREnum(ok.committed)
                + b.writeNFS3Verifier(ok.verifier)
        }, fail: { $0.writeNFS3WCCData($1) })
    }
}
