import NIOCore
import XDR

// RFC 1813 §3.3.14 RENAME:
//   struct RENAME3args { diropargs3 from; diropargs3 to; };
//   struct RENAME3resok { wcc_data fromdir_wcc; wcc_data todir_wcc; };
//   struct RENAME3resfail { wcc_data fromdir_wcc; wcc_data todir_wcc; };

public struct NFS3RenameCall: Hashable, Sendable {
    public var from: NFS3DirOpArgs
    public var to: NFS3DirOpArgs
    public init(from: NFS3DirOpArgs, to: NFS3DirOpArgs) { self.from = from; self.to = to }
}

/// RENAME3resok and RENAME3resfail.
public struct NFS3RenameWCC: Hashable, Sendable {
    public var fromDirectoryWCC: NFS3WCCData
    public var toDirectoryWCC: NFS3WCCData
    public init(fromDirectoryWCC: NFS3WCCData, toDirectoryWCC: NFS3WCCData) {
        self.fromDirectoryWCC = fromDirectoryWCC; self.toDirectoryWCC = toDirectoryWCC
    }
}

public struct NFS3RenameReply: Sendable {
    public var result: NFS3Result<NFS3RenameWCC, NFS3RenameWCC>
    public init(result: NFS3Result<NFS3RenameWCC, NFS3RenameWCC>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3RenameCall() throws -> NFS3RenameCall {
        NFS3RenameCall(from: try readNFS3DirOpArgs(), to: try readNFS3DirOpArgs())
    }

    @discardableResult
    public mutating func writeNFS3RenameCall(_ call: NFS3RenameCall) -> Int {
        writeNFS3DirOpArgs(call.from) + writeNFS3DirOpArgs(call.to)
    }

    public mutating func readNFS3RenameWCC() throws -> NFS3RenameWCC {
        NFS3RenameWCC(fromDirectoryWCC: try readNFS3WCCData(), toDirectoryWCC: try readNFS3WCCData())
    }

    @discardableResult
    public mutating func writeNFS3RenameWCC(_ wcc: NFS3RenameWCC) -> Int {
        writeNFS3WCCData(wcc.fromDirectoryWCC) + writeNFS3WCCData(wcc.toDirectoryWCC)
    }

    public mutating func readNFS3RenameReply() throws -> NFS3RenameReply {
        NFS3RenameReply(result: try readNFS3Result(okay: { try $0.readNFS3RenameWCC() },
                                                   fail: { try $0.readNFS3RenameWCC() }))
    }

    @discardableResult
    public mutating func writeNFS3RenameReply(_ reply: NFS3RenameReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3RenameWCC($1) }, fail: { $0.writeNFS3RenameWCC($1) })
    }
}
