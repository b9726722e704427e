import NIOCore
import XDR

// RFC 1813 §3.3.10 SYMLINK:
//   struct symlinkdata3 { sattr3 symlink_attributes; nfspath3 symlink_data; };
//   struct SYMLINK3args { diropargs3 where; symlinkdata3 symlink; };
//   struct SYMLINK3resok { post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc; };
//   struct SYMLINK3resfail { wcc_data dir_wcc; };

public struct NFS3SymlinkCall: Hashable, Sendable {
    public var `where`: NFS3DirOpArgs
    public var attributes: NFS3SetAttributes
    /// symlink_data: the link's target, as bytes.
    public var target: [UInt8]
    public init(where: NFS3DirOpArgs, attributes: NFS3SetAttributes, target: [UInt8]) {
        self.where = `where`; self.attributes = attributes; self.target = target
    }
}

public struct NFS3SymlinkReply: Sendable {
    /// The failure arm carries the directory's wcc_data.
    public var result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>
    public init(result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3SymlinkCall() throws -> NFS3SymlinkCall {
        NFS3SymlinkCall(where: try readNFS3DirOpArgs(), attributes: try readNFS3SetAttributes(), target: try readNFS3Path())
    }

    @discardableResult
    public mutating func writeNFS3SymlinkCall(_ call: NFS3SymlinkCall) -> Int {
        writeNFS3DirOpArgs(call.where) + writeNFS3SetAttributes(call.attributes) + writeNFS3Path(call.target)
    }

    public mutating func readNFS3SymlinkReply() throws -> NFS3SymlinkReply {
        NFS3SymlinkReply(result: try readNFS3Result(okay: { try $0.readNFS3NewObjectOkay() },
                                                    fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3SymlinkReply(_ reply: NFS3SymlinkReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3NewObjectOkay($1) }, fail: { $0.writeNFS3WCCData($1) })
    }
}
