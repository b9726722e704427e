import NIOCore
import XDR

// RFC 1813 §3.3.3 LOOKUP:
//   struct LOOKUP3args { diropargs3 what; };
//   struct LOOKUP3resok { nfs_fh3 object; post_op_attr obj_attributes; post_op_attr dir_attributes; };
//   struct LOOKUP3resfail { post_op_attr dir_attributes; };

public struct NFS3LookupCall: Hashable, Sendable {
    public var what: NFS3DirOpArgs
    public init(what: NFS3DirOpArgs) { self.what = what }
}

public struct NFS3LookupOkay: Hashable, Sendable {
    public var object: NFS3FileHandle
    public var objectAttributes: NFS3FileAttributes?
    public var directoryAttributes: NFS3FileAttributes?
    public init(object: NFS3FileHandle, objectAttributes: NFS3FileAttributes?, directoryAttributes: NFS3FileAttributes?) {
        self.object = object; self.objectAttributes = objectAttributes; self.directoryAttributes = directoryAttributes
    }
}

public struct NFS3LookupReply: Sendable {
    /// The failure arm carries the directory's attributes.
    public var result: NFS3Result<NFS3LookupOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3LookupOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3LookupCall() throws -> NFS3LookupCall {
        NFS3LookupCall(what: try readNFS3DirOpArgs())
    }

    @discardableResult
    public mutating func writeNFS3LookupCall(_ call: NFS3LookupCall) -> Int {
        writeNFS3DirOpArgs(call.what)
    }

    public mutating func readNFS3LookupReply() throws -> NFS3LookupReply {
        NFS3LookupReply(result: try readNFS3Result(okay: { b in
            NFS3LookupOkay(object: try b.readNFS3FileHandle(), objectAttributes: try b.readNFS3PostOpAttributes(),
                           directoryAttributes: try b.readNFS3PostOpAttributes())
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3LookupReply(_ reply: NFS3LookupReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3FileHandle(ok.object) + b.writeNFS3PostOpAttributes(ok.objectAttributes)
                + b.writeNFS3PostOpAttributes(ok.directoryAttributes)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }
}
