import NIOCore
import XDR

// RFC 1813 §3.3.9 MKDIR:
//   struct MKDIR3args { diropargs3 where; sattr3 attributes; };
//   struct MKDIR3resok { post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc; };
//   struct MKDIR3resfail { wcc_data dir_wcc; };

public struct NFS3MkdirCall: Hashable, Sendable {
    public var `where`: NFS3DirOpArgs
    public var attributes: NFS3SetAttributes
    public init(where: NFS3DirOpArgs, attributes: NFS3SetAttributes) { self.where = `where`; self.attributes = attributes }
}

public struct NFS3MkdirReply: Sendable {
    /// The failure arm carries the directory's wcc_data.
    public var result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>
    public init(result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3MkdirCall() throws -> NFS3MkdirCall {
        NFS3MkdirCall(where: try readNFS3DirOpArgs(), attributes: try readNFS3SetAttributes())
    }

    @discardableResult
    public mutating func writeNFS3MkdirCall(_ call: NFS3MkdirCall) -> Int {
        writeNFS3DirOpArgs(call.where) + writeNFS3SetAttributes(call.attributes)
    }

    public mutating func readNFS3MkdirReply() throws -> NFS3MkdirReply {
        NFS3MkdirReply(result: try readNFS3Result(okay: { try $0.readNFS3NewObjectOkay() },
                                                  fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3MkdirReply(_ reply: NFS3MkdirReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3NewObjectOkay($1) }, fail: { $0.writeNFS3WCCData($1) })
    }
}
