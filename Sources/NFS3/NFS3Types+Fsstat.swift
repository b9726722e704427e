import NIOCore
import XDR

// RFC 1813 §3.3.18 FSSTAT:
//   struct FSSTAT3args { nfs_fh3 fsroot; };
//   struct FSSTAT3resok { post_op_attr obj_attributes; size3 tbytes; size3 fbytes; size3 abytes;
//                         size3 tfiles; size3 ffiles; size3 afiles; uint32 invarsec; };
//   struct FSSTAT3resfail { post_op_attr obj_attributes; };

public struct NFS3FsstatCall: Hashable, Sendable {
    public var fsRoot: NFS3FileHandle
    public init(fsRoot: NFS3FileHandle) { self.fsRoot = fsRoot }
}

public struct NFS3FsstatOkay: Hashable, Sendable {
    public var attributes: NFS3FileAttributes?
    public var totalBytes: UInt64
    public var freeBytes: UInt64
    /// Free bytes available to the caller's user.
    public var availableBytes: UInt64
    public var totalFiles: UInt64
    public var freeFiles: UInt64
    public var availableFiles: UInt64
    /// Seconds for which the file system is not expected to change (0: volatile).
    public var invarsec: UInt32
    public init(attributes: NFS3FileAttributes?, totalBytes: UInt64, freeBytes: UInt64, availableBytes: UInt64,
                totalFiles: UInt64, freeFiles: UInt64, availableFiles: UInt64, invarsec: UInt32) {
        self.attributes = attributes; self.totalBytes = totalBytes; self.freeBytes = freeBytes
        self.availableBytes = availableBytes; self.totalFiles = totalFiles; self.freeFiles = freeFiles
        self.availableFiles = availableFiles; self.invarsec = invarsec
    }
}

public struct NFS3FsstatReply: Sendable {
    public var result: NFS3Result<NFS3FsstatOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3FsstatOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3FsstatCall() throws -> NFS3FsstatCall {
        NFS3FsstatCall(fsRoot: try readNFS3FileHandle())
    }

    @discardableResult
    public mutating func writeNFS3FsstatCall(_ call: NFS3FsstatCall) -> Int {
        writeNFS3FileHandle(call.fsRoot)
    }

    public mutating func readNFS3FsstatReply() throws -> NFS3FsstatReply {
        NFS3FsstatReply(result: try readNFS3Result(okay: { b in
            NFS3FsstatOkay(attributes: try b.readNFS3PostOpAttributes(), totalBytes: try b.readXDRUInt64(),
                           freeBytes: try b.readXDRUInt64(), availableBytes: try b.readXDRUInt64(),
                           totalFiles: try b.readXDRUInt64(), freeFiles: try b.readXDRUInt64(),
                           availableFiles: try b.readXDRUInt64(), invarsec: try b.readXDRUInt32())
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3FsstatReply(_ reply: NFS3FsstatReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            b.writeNFS3PostOpAttributes(ok.attributes) + b.writeXDRUInt64(ok.totalBytes) + b.writeXDRUInt64(ok.freeBytes)
                + b.writeXDRUInt64(ok.availableBytes) + b.writeXDRUInt64(ok.totalFiles) + b.writeXDRUInt64(ok.freeFiles)
                + b.writeXDRUInt64(ok.availableFiles) + b.writeXDRUInt32(ok.invarsec)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }
}
