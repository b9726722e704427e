import NIOCore
import XDR

// RFC 1813 §3.3.12 REMOVE:
//   struct REMOVE3args { diropargs3 object; };
//   struct REMOVE3resok { wcc_data dir_wcc; };
//   struct REMOVE3resfail { wcc_data dir_wcc; };

public struct NFS3RemoveCall: Hashable, Sendable {
    public var object: NFS3DirOpArgs
    public init(object: NFS3DirOpArgs) { self.object = object }
}

public struct NFS3RemoveReply: Sendable {
    /// Both arms carry the directory's wcc_data.
    public var result: NFS3Result<NFS3WCCData, NFS3WCCData>
    public init(result: NFS3Result<NFS3WCCData, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3RemoveCall() throws -> NFS3RemoveCall {
        NFS3RemoveCall(object: try readNFS3DirOpArgs())
    }

    @discardableResult
    public mutating func writeNFS3RemoveCall(_ call: NFS3RemoveCall) -> Int {
        writeNFS3DirOpArgs(call.object)
    }

    public mutating func readNFS3RemoveReply() throws -> NFS3RemoveReply {
        NFS3RemoveReply(result: try readNFS3Result(okay: { try $0.readNFS3WCCData() },
                                                   fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3RemoveReply(_ reply: NFS3RemoveReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3WCCData($1) }, fail: { $0.writeNFS3WCCData($1) })
    }
}
