import NIOCore
import XDR

// RFC 1813 §3.3.1 GETATTR:
//   struct GETATTR3args { nfs_fh3 object; };
//   struct GETATTR3resok { fattr3 obj_attributes; };
//   union GETATTR3res switch (nfsstat3 status) { case NFS3_OK: GETATTR3resok resok; default: void; };

public struct NFS3GetattrCall: Hashable, Sendable {
    public var object: NFS3FileHandle
    public init(object: NFS3FileHandle) { self.object = object }
}

public struct NFS3GetattrReply: Sendable {
    public var result: NFS3Result<NFS3FileAttributes, Void>
    public init(result: NFS3Result<NFS3FileAttributes, Void>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3GetattrCall() throws -> NFS3GetattrCall {
        NFS3GetattrCall(object: try readNFS3FileHandle())
    }

    @discardableResult
    public mutating func writeNFS3GetattrCall(_ call: NFS3GetattrCall) -> Int {
        writeNFS3FileHandle(call.object)
    }

    public mutating func readNFS3GetattrReply() throws -> NFS3GetattrReply {
        NFS3GetattrReply(result: try readNFS3Result(okay: { try $0.readNFS3FileAttributes() }, fail: { _ in () }))
    }

    @discardableResult
    public mutating func writeNFS3GetattrReply(_ reply: NFS3GetattrReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3FileAttributes($1) }, fail: { _, _ in 0 })
    }
}
