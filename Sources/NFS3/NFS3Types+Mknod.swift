import NIOCore
import XDR

// RFC 1813 §3.3.11 MKNOD:
//   struct devicedata3 { sattr3 dev_attributes; specdata3 spec; };
//   union mknoddata3 switch (ftype3 type) {
//   case NF3CHR:
//   case NF3BLK:  devicedata3 device;
//   case NF3SOCK:
//   case NF3FIFO: sattr3 pipe_attributes;
//   default:      void;
//   };
//   struct MKNOD3args { diropargs3 where; mknoddata3 what; };
//   struct MKNOD3resok { post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc; };
//   struct MKNOD3resfail { wcc_data dir_wcc; };
//
// The default arm (NF3REG, NF3DIR, NF3LNK) decodes as `.other` so the server can answer
// NFS3ERR_BADTYPE; a value outside ftype3 is malformed XDR.

/// RFC 1813 §3.3.11 mknoddata3.
public enum NFS3MknodData: Hashable, Sendable {
    case characterDevice(NFS3SetAttributes, NFS3SpecData)
    case blockDevice(NFS3SetAttributes, NFS3SpecData)
    case socket(NFS3SetAttributes)
    case fifo(NFS3SetAttributes)
    /// A type MKNOD does not create (regular, directory, link); it carries no data.
    case other(NFS3FileType)

    /// The ftype3 discriminant.
    public var type: NFS3FileType {
        switch self {
        case .characterDevice: return .characterDevice
        case .blockDevice: return .blockDevice
        case .socket: return .socket
        case .fifo: return .fifo
        case .other(let t): return t
        }
    }
}

public struct NFS3MknodCall: Hashable, Sendable {
    public var `where`: NFS3DirOpArgs
    public var what: NFS3MknodData
    public init(where: NFS3DirOpArgs, what: NFS3MknodData) { self.where = `where`; self.what = what }
}

public struct NFS3MknodReply: Sendable {
    /// The failure arm carries the directory's wcc_data.
    public var result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>
    public init(result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3MknodData() throws -> NFS3MknodData {
        switch try readXDREnum(NFS3FileType.self) {
        case .characterDevice:
            let attributes = try readNFS3SetAttributes()
            return .characterDevice(attributes, NFS3SpecData(major: try readXDRUInt32(), minor: try readXDRUInt32()))
        case .blockDevice:
            let attributes = try readNFS3SetAttributes()
            return .blockDevice(attributes, NFS3SpecData(major: try readXDRUInt32(), minor: try readXDRUInt32()))
        case .socket: return .socket(try readNFS3SetAttributes())
        case .fifo: return .fifo(try readNFS3SetAttributes())
        case let t: return .other(t)
        }
    }

    /// Writes the discriminant and its arm. `.other` writes only the type, whatever it is; it is
    /// meant for the types of the default arm.
    @discardableResult
    public mutating func writeNFS3MknodData(_ what: NFS3MknodData) -> Int {
        switch what {
        case .characterDevice(let s, let spec), .blockDevice(let s, let spec):
            return writeXDREnum(what.type) + writeNFS3SetAttributes(s)
                + writeXDRUInt32(spec.major) + writeXDRUInt32(spec.minor)
        case .socket(let s), .fifo(let s):
            return writeXDREnum(what.type) + writeNFS3SetAttributes(s)
        case .other(let t):
            return writeXDREnum(t)
        }
    }

    public mutating func readNFS3MknodCall() throws -> NFS3MknodCall {
        NFS3MknodCall(where: try readNFS3DirOpArgs(), what: try readNFS3MknodData())
    }

    @discardableResult
    public mutating func writeNFS3MknodCall(_ call: NFS3MknodCall) -> Int {
        writeNFS3DirOpArgs(call.where) + writeNFS3MknodData(call.what)
    }

    public mutating func readNFS3MknodReply() throws -> NFS3MknodReply {
        NFS3MknodReply(result: try readNFS3Result(okay: { try $0.readNFS3NewObjectOkay() },
                                                  fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3MknodReply(_ reply: NFS3MknodReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3NewObjectOkay($1) }, fail: { $0.writeNFS3WCCData($1) })
    }
}
