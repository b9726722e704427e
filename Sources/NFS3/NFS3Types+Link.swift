import NIOCore
import XDR

// RFC 1813 §3.3.15 LINK:
//   struct LINK3args { nfs_fh3 file; diropargs3 link; };
//   struct LINK3resok { post_op_attr file_attributes; wcc_data linkdir_wcc; };
//   struct LINK3resfail { post_op_attr file_attributes; wcc_data linkdir_wcc; };

public struct NFS3LinkCall: Hashable, Sendable {
    /// The existing file (a plain handle, not diropargs3).
    public var file: NFS3FileHandle
    /// Where the new name goes.
    public var link: NFS3DirOpArgs
    public init(file: NFS3FileHandle, link: NFS3DirOpArgs) { self.file = file; self.link = link }
}

/// LINK3resok and LINK3resfail.
public struct NFS3LinkWCC: Hashable, Sendable {
    public var fileAttributes: NFS3FileAttributes?
    public var linkDirectoryWCC: NFS3WCCData
    public init(fileAttributes: NFS3FileAttributes?, linkDirectoryWCC: NFS3WCCData) {
        self.fileAttributes = fileAttributes; self.linkDirectoryWCC = linkDirectoryWCC
    }
}

public struct NFS3LinkReply: Sendable {
    public var result: NFS3Result<NFS3LinkWCC, NFS3LinkWCC>
    public init(result: NFS3Result<NFS3LinkWCC, NFS3LinkWCC>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3LinkCall() throws -> NFS3LinkCall {
        NFS3LinkCall(file: try readNFS3FileHandle(), link: try readNFS3DirOpArgs())
    }

    @discardableResult
    public mutating func writeNFS3LinkCall(_ call: NFS3LinkCall) -> Int {
        writeNFS3FileHandle(call.file) + writeNFS3DirOpArgs(call.link)
    }

    public mutating func readNFS3LinkWCC() throws -> NFS3LinkWCC {
        NFS3LinkWCC(fileAttributes: try readNFS3PostOpAttributes(), linkDirectoryWCC: try readNFS3WCCData())
    }

    @discardableResult
    public mutating func writeNFS3LinkWCC(_ wcc: NFS3LinkWCC) -> Int {
        writeNFS3PostOpAttributes(wcc.fileAttributes) + writeNFS3WCCData(wcc.linkDirectoryWCC)
    }

    public mutating func readNFS3LinkReply() throws -> NFS3LinkReply {
        NFS3LinkReply(result: try readNFS3Result(okay: { try $0.readNFS3LinkWCC() },
                                                 fail: { try $0.readNFS3LinkWCC() }))
    }

    @discardableResult
    public mutating func writeNFS3LinkReply(_ reply: NFS3LinkReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3LinkWCC($1) }, fail: { $0.writeNFS3LinkWCC($1) })
    }
}
