import NIOCore
import XDR

// RFC 1813 §3.3.5 READLINK:
//   struct READLINK3args { nfs_fh3 symlink; };
//   struct READLINK3resok { post_op_attr symlink_attributes; nfspath3 data; };
//   struct READLINK3resfail { post_op_attr symlink_attributes; };

public struct NFS3ReadlinkCall: Hashable, Sendable {
    public var symlink: NFS3FileHandle
    public init(symlink: NFS3FileHandle) { self.symlink = symlink }
}

public struct NFS3ReadlinkOkay: Hashable, Sendable {
    public var attributes: NFS3FileAttributes?
    /// The link's target, as bytes.
    public var path: [UInt8]
    public init(attributes: NFS3FileAttributes?, path: [UInt8]) { self.attributes = attributes; self.path = path }
}

public struct NFS3ReadlinkReply: Sendable {
    public var result: NFS3Result<NFS3ReadlinkOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3ReadlinkOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3ReadlinkCall() throws -> NFS3ReadlinkCall {
        NFS3ReadlinkCall(symlink: try readNFS3FileHandle())
    }

    @discardableResult
    public mutating func writeNFS3ReadlinkCall(_ call: NFS3ReadlinkCall) -> Int {
        writeNFS3FileHandle(call.symlink)
    }

    public mutating func readNFS3ReadlinkReply() throws -> NFS3ReadlinkReply {
        NFS3ReadlinkReply(result: try readNFS3Result(okay: { b in
            NFS3ReadlinkOkay(attributes: try b.readNFS3PostOpAttributes(), path: try b.readNFS3Path())
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3ReadlinkReply(_ reply: NFS3ReadlinkReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3PostOpAttributes(ok.attributes) + b.writeNFS3Path(ok.path)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }
}
