import NIOCore
import XDR

// RFC 1813 §3.3.4 ACCESS:
//   const ACCESS3_READ    = 0x0001;
//   const ACCESS3_LOOKUP  = 0x0002;
//   const ACCESS3_MODIFY  = 0x0004;
//   const ACCESS3_EXTEND  = 0x0008;
//   const ACCESS3_DELETE  = 0x0010;
//   const ACCESS3_EXECUTE = 0x0020;
//   struct ACCESS3args { nfs_fh3 object; uint32 access; };
//   struct ACCESS3resok { post_op_attr obj_attributes; uint32 access; };
//   struct ACCESS3resfail { post_op_attr obj_attributes; };

/// The ACCESS3_* bits of the `access` masks.
public enum NFS3AccessMask {
    public static let read: UInt32 = 0x0001
    public static let lookup: UInt32 = 0x0002
    public static let modify: UInt32 = 0x0004
    public static let extend: UInt32 = 0x0008
    public static let delete: UInt32 = 0x0010
    public static let execute: UInt32 = 0x0020
    /// Every bit defined by RFC 1813.
    public static let all: UInt32 = 0x003f
}

public struct NFS3AccessCall: Hashable, Sendable {
    public var object: NFS3FileHandle
    /// The bits the client asks about (NFS3AccessMask).
    public var access: UInt32
    public init(object: NFS3FileHandle, access: UInt32) { self.object = object; self.access = access }
}

public struct NFS3AccessOkay: Hashable, Sendable {
    public var attributes: NFS3FileAttributes?
    /// The subset of the requested bits that are granted.
    public var access: UInt32
    public init(attributes: NFS3FileAttributes?, access: UInt32) { self.attributes = attributes; self.access = access }
}

public struct NFS3AccessReply: Sendable {
    public var result: NFS3Result<NFS3AccessOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3AccessOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3AccessCall() throws -> NFS3AccessCall {
        NFS3AccessCall(object: try readNFS3FileHandle(), access: try readXDRUInt32())
    }

    @discardableResult
    public mutating func writeNFS3AccessCall(_ call: NFS3AccessCall) -> Int {
        writeNFS3FileHandle(call.object) + writeXDRUInt32(call.access)
    }

    public mutating func readNFS3AccessReply() throws -> NFS3AccessReply {
        NFS3AccessReply(result: try readNFS3Result(okay: { b in
            NFS3AccessOkay(attributes: try b.readNFS3PostOpAttributes(), access: try b.readXDRUInt32())
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3AccessReply(_ reply: NFS3AccessReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3PostOpAttributes(ok.attributes) + b.writeXDRUInt32(ok.access)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }
}
