import NIOCore
import XDR

// RFC 1813 §3.3.20 PATHCONF:
//   struct PATHCONF3args { nfs_fh3 object; };
//   struct PATHCONF3resok { post_op_attr obj_attributes; uint32 linkmax; uint32 name_max;
//                           bool no_trunc; bool chown_restricted; bool case_insensitive;
//                           bool case_preserving; };
//   struct PATHCONF3resfail { post_op_attr obj_attributes; };

public struct NFS3PathconfCall: Hashable, Sendable {
    public var object: NFS3FileHandle
    public init(object: NFS3FileHandle) { self.object = object }
}

public struct NFS3PathconfOkay: Hashable, Sendable {
    public var attributes: NFS3FileAttributes?
    public var linkMax: UInt32
    public var nameMax: UInt32
    public var noTrunc: Bool
    public var chownRestricted: Bool
    public var caseInsensitive: Bool
    public var casePreserving: Bool
    public init(attributes: NFS3FileAttributes?, linkMax: UInt32, nameMax: UInt32, noTrunc: Bool,
                chownRestricted: Bool, caseInsensitive: Bool, casePreserving: Bool) {
        self.attributes = attributes; self.linkMax = linkMax; self.nameMax = nameMax; self.noTrunc = noTrunc
        self.chownRestricted = chownRestricted; self.caseInsensitive = caseInsensitive
        self.casePreserving = casePreserving
    }
}

public struct NFS3PathconfReply: Sendable {
    public var result: NFS3Result<NFS3PathconfOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3PathconfOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3PathconfCall() throws -> NFS3PathconfCall {
        NFS3PathconfCall(object: try readNFS3FileHandle())
    }

    @discardableResult
    public mutating func writeNFS3PathconfCall(_ call: NFS3PathconfCall) -> Int {
        writeNFS3FileHandle(call.object)
    }

    public mutating func readNFS3PathconfReply() throws -> NFS3PathconfReply {
        NFS3PathconfReply(result: try readNFS3Result(okay: { b in
            NFS3PathconfOkay(attributes: try b.readNFS3PostOpAttributes(), linkMax: try b.readXDRUInt32(),
                             nameMax: try b.readXDRUInt32(), noTrunc: try b.readXDRBool(),
                             chownRestricted: try b.readXDRBool(), caseInsensitive: try b.readXDRBool(),
                             casePreserving: try b.readXDRBool())
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3PathconfReply(_ reply: NFS3PathconfReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3PostOpAttributes(ok.attributes) + b.writeXDRUInt32(ok.linkMax) + b.writeXDRUInt32(ok.nameMax)
                + b.writeXDRBool(ok.noTrunc) + b.writeXDRBool(ok.chownRestricted) + b.writeXDRBool(ok.caseInsensitive)
                + b.writeXDRBool(ok.casePreserving)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }
}
