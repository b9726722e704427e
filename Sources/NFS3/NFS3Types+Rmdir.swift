import NIOCore
import XDR

// RFC 1813 §3.3.13 RMDIR:
//   struct RMDIR3args { diropargs3 object; };
//   struct RMDIR3resok { wcc_data dir_wcc; };
//   struct RMDIR3resfail { wcc_data dir_wcc; };

public struct NFS3RmdirCall: Hashable, Sendable {
    public var object: NFS3DirOpArgs
    public init(object: NFS3DirOpArgs) { self.object = object }
}

public struct NFS3RmdirReply: Sendable {
    /// Both arms carry the directory's wcc_data.
    public var result: NFS3Result<NFS3WCCData, NFS3WCCData>
    public init(result: NFS3Result<NFS3WCCData, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3RmdirCall() throws -> NFS3RmdirCall {
        NFS3RmdirCall(object: try readNFS3DirOpArgs())
    }

    @discardableResult
    public mutating func writeNFS3RmdirCall(_ call: NFS3RmdirCall) -> Int {
        writeNFS3DirOpArgs(call.object)
    }

    public mutating func readNFS3RmdirReply() throws -> NFS3RmdirReply {
        NFS3RmdirReply(result: try readNFS3Result(okay: { try $0.readNFS3WCCData() },
                                                  fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3RmdirReply(_ reply: NFS3RmdirReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3WCCData($1) }, fail: { $0.writeNFS3WCCData($1) })
    }
}
