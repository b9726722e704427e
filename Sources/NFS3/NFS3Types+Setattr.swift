import NIOCore
import XDR

// RFC 1813 §3.3.2 SETATTR:
//   union sattrguard3 switch (bool check) { case TRUE: nfstime3 obj_ctime; case FALSE: void; };
//   struct SETATTR3args { nfs_fh3 object; sattr3 new_attributes; sattrguard3 guard; };
//   struct SETATTR3resok { wcc_data obj_wcc; };
//   struct SETATTR3resfail { wcc_data obj_wcc; };

public struct NFS3SetattrCall: Hashable, Sendable {
    public var object: NFS3FileHandle
    public var newAttributes: NFS3SetAttributes
    /// sattrguard3: when set, the server applies the change only if the object's ctime equals it.
    public var guardCtime: NFS3Time?
    public init(object: NFS3FileHandle, newAttributes: NFS3SetAttributes, guardCtime: NFS3Time?) {
        self.object = object; self.newAttributes = newAttributes; self.guardCtime = guardCtime
    }
}

public struct NFS3SetattrReply: Sendable {
    public var result: NFS3Result<NFS3WCCData, NFS3WCCData>
    public init(result: NFS3Result<NFS3WCCData, NFS3WCCData>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3SetattrCall() throws -> NFS3SetattrCall {
        NFS3SetattrCall(object: try readNFS3FileHandle(), newAttributes: try readNFS3SetAttributes(),
                        guardCtime: try readXDROptional { try $0.readNFS3Time() })
    }

    @discardableResult
    public mutating func writeNFS3SetattrCall(_ call: NFS3SetattrCall) -> Int {
        writeNFS3FileHandle(call.object) + writeNFS3SetAttributes(call.newAttributes)
            + writeXDROptional(call.guardCtime) { $0.writeNFS3Time($1) }
    }

    public mutating func readNFS3SetattrReply() throws -> NFS3SetattrReply {
        NFS3SetattrReply(result: try readNFS3Result(okay: { try $0.readNFS3WCCData() },
                                                    fail: { try $0.readNFS3WCCData() }))
    }

    @discardableResult
    public mutating func writeNFS3SetattrReply(_ reply: NFS3SetattrReply) -> Int {
        writeNFS3Result(reply.result, okay: { $0.writeNFS3WCCData($1) }, fail: { $0.writeNFS3WCCData($1) })
    }
}
