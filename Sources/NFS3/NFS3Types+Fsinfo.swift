import NIOCore
import XDR

// RFC 1813 §3.3.19 FSINFO:
//   const FSF3_LINK        = 0x0001;
//   const FSF3_SYMLINK     = 0x0002;
//   const FSF3_HOMOGENEOUS = 0x0008;
//   const FSF3_CANSETTIME  = 0x0010;
//   struct FSINFO3args { nfs_fh3 fsroot; };
//   struct FSINFO3resok { post_op_attr obj_attributes; uint32 rtmax; uint32 rtpref; uint32 rtmult;
//                         uint32 wtmax; uint32 wtpref; uint32 wtmult; uint32 dtpref;
//                         size3 maxfilesize; nfstime3 time_delta; uint32 properties; };
//   struct FSINFO3resfail { post_op_attr obj_attributes; };

/// The FSF3_* bits of `properties`.
public enum NFS3FSInfoProperties {
    public static let link: UInt32 = 0x0001
    public static let symlink: UInt32 = 0x0002
    public static let homogeneous: UInt32 = 0x0008
    public static let canSetTime: UInt32 = 0x0010
}

public struct NFS3FsinfoCall: Hashable, Sendable {
    public var fsRoot: NFS3FileHandle
    public init(fsRoot: NFS3FileHandle) { self.fsRoot = fsRoot }
}

public struct NFS3FsinfoOkay: Hashable, Sendable {
    public var attributes: NFS3FileAttributes?
    public var rtmax: UInt32
    public var rtpref: UInt32
    public var rtmult: UInt32
    public var wtmax: UInt32
    public var wtpref: UInt32
    public var wtmult: UInt32
    public var dtpref: UInt32
    public var maxFileSize: UInt64
    public var timeDelta: NFS3Time
    /// NFS3FSInfoProperties bits.
    public var properties: UInt32
    public init(attributes: NFS3FileAttributes?, rtmax: UInt32, rtpref: UInt32, rtmult: UInt32, wtmax: UInt32,
                wtpref: UInt32, wtmult: UInt32, dtpref: UInt32, maxFileSize: UInt64, timeDelta: NFS3Time,
                properties: UInt32) {
        self.attributes = attributes; self.rtmax = rtmax; self.rtpref = rtpref; self.rtmult = rtmult
        self.wtmax = wtmax; self.wtpref = wtpref; self.wtmult = wtmult; self.dtpref = dtpref
        self.maxFileSize = maxFileSize; self.timeDelta = timeDelta; self.properties = properties
    }
}

public struct NFS3FsinfoReply: Sendable {
    public var result: NFS3Result<NFS3FsinfoOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3FsinfoOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3FsinfoCall() throws -> NFS3FsinfoCall {
        NFS3FsinfoCall(fsRoot: try readNFS3FileHandle())
    }

    @discardableResult
    public mutating func writeNFS3FsinfoCall(_ call: NFS3FsinfoCall) -> Int {
        writeNFS3FileHandle(call.fsRoot)
    }

    public mutating func readNFS3FsinfoReply() throws -> NFS3FsinfoReply {
        NFS3FsinfoReply(result: try readNFS3Result(okay: { b in
            NFS3FsinfoOkay(attributes: try b.readNFS3PostOpAttributes(), rtmax: try b.readXDRUInt32(),
                           rtpref: try b.readXDRUInt32(), rtmult: try b.readXDRUInt32(), wtmax: try b.readXDRUInt32(),
                           wtpref: try b.readXDRUInt32(), wtmult: try b.readXDRUInt32(), dtpref: try b.readXDRUInt32(),
                           maxFileSize: try b.readXDRUInt64(), timeDelta: try b.readNFS3Time(),
                           properties: try b.readXDRUInt32())
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3FsinfoReply(_ reply: NFS3FsinfoReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3PostOpAttributes(ok.attributes) + b.writeXDRUInt32(ok.rtmax) + b.writeXDRUInt32(ok.rtpref)
                + b.writeXDRUInt32(ok.rtmult) + b.writeXDRUInt32(ok.wtmax) + b.writeXDRUInt32(ok.wtpref)
                + b.writeXDRUInt32(ok.wtmult) + b.writeXDRUInt32(ok.dtpref) + b.writeXDRUInt64(ok.maxFileSize)
                + b.writeNFS3Time(ok.timeDelta) + b.writeXDRUInt32(ok.properties)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }
}
