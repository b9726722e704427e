import NIOCore
import XDR

// RFC 1813 §3.3.8 CREATE:
//   enum createmode3 { UNCHECKED = 0, GUARDED = 1, EXCLUSIVE = 2 };
//   union createhow3 switch (createmode3 mode) {
//   case UNCHECKED:
//   case GUARDED:   sattr3 obj_attributes;
//   case EXCLUSIVE: createverf3 verf;
//   };
//   struct CREATE3args { diropargs3 where; createhow3 how; };
//   struct CREATE3resok { post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc; };
//   struct CREATE3resfail { wcc_data dir_wcc; };
//
// MKDIR, SYMLINK and MKNOD answer with the same resok and resfail, so the OK arm is the shared
// NFS3NewObjectOkay and the failure arm is the directory's wcc_data.

/// RFC 1813 §3.3.8 createhow3.
public enum NFS3CreateHow: Hashable, Sendable {
    /// Create, or truncate an existing file per the attributes.
    case unchecked(NFS3SetAttributes)
    /// Create; NFS3ERR_EXIST if the name exists.
    case guarded(NFS3SetAttributes)
    /// Exclusive create keyed by the client's verifier.
    case exclusive(NFS3Verifier)
}

public struct NFS3CreateCall: Hashable, Sendable {
    public var `where`: NFS3DirOpArgs
    public var how: NFS3CreateHow
    public init(where: NFS3DirOpArgs, how: NFS3CreateHow) { self.where = `where`; self.how = how }
}

/// CREATE3resok, MKDIR3resok, SYMLINK3resok and MKNOD3resok.
public struct NFS3NewObjectOkay: Hashable, Sendable {
    /// post_op_fh3: the new object's handle, if the server returns it.
    public var object: NFS3FileHandle?
    public var attributes: NFS3FileAttributes?
    public var directoryWCC: NFS3WCCData
    public init(object: NFS3FileHandle?, attributes: NFS3FileAttributes?, directoryWCC: NFS3WCCData) {
        self.object = object; self.attributes = attributes; self.directoryWCC = directoryWCC
    }
}

public struct NFS3CreateReply: Sendable {
    /// The failure arm carries the directory's wcc_data.
    public var result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>
    public init(result: NFS3Result<NFS3NewObjectOkay, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3CreateHow() throws -> NFS3CreateHow {
        switch try readXDRUInt32() {
        case 0: return .unchecked(try readNFS3SetAttributes())
        case 1: return .guarded(try readNFS3SetAttributes())
        case 2: return .exclusive(try readNFS3Verifier())
        case let v: throw XDRError(.invalidEnum, "createmode3 \(v)")
        }
    }

    @discardableResult
    public mutating func writeNFS3CreateHow(_ how: NFS3CreateHow) -> Int {
        switch how {
        case .unchecked(let s): return writeXDRUInt32(0) + writeNFS3SetAttributes(s)
        case .guarded(let s): return writeXDRUInt32(1) + writeNFS3SetAttributes(s)
        case .exclusive(let v): return writeXDRUInt32(2) + writeNFS3Verifier(v)
        }
    }

    public mutating func readNFS3NewObjectOkay() throws -> NFS3NewObjectOkay {
        NFS3NewObjectOkay(object: try readNFS3PostOpFileHandle(), attributes: try readNFS3PostOpAttributes(),
                          directoryWCC: try readNFS3WCCData())
    }

    @discardableResult
    public mutating func writeNFS3NewObjectOkay(_ ok: NFS3NewObjectOkay) -> Int {
        writeNFS3PostOpFileHandle(ok.object) + writeNFS3PostOpAttributes(ok.attributes) + writeNFS3WCCData(ok.directoryWCC)
    }

    public mutating func readNFS3CreateCall() throws -> NFS3CreateCall {
        NFS3CreateCall(where: try readNFS3DirOpArgs(), how: try readNFS3CreateHow())
    }

    @discardableResult
    public mutating func writeNFS3CreateCall(_ call: NFS3CreateCall) -> Int {
        writeNFS3DirOpArgs(call.where) + writeNFS3CreateHow(call.how)
    }

    public mutating func readNFS3CreateReply() throws -> NFS3CreateReply {
        NFS3CreateReply(result: try readNFS3Result(okay: { try $0.readNFS3NewObjectOkay() },
                                                   fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3CreateReply(_ reply: NFS3CreateReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3NewObjectOkay($1) }, fail: { $0.writeNFS3WCCData($1) })
    }
}
