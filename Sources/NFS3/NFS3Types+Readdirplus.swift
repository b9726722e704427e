import NIOCore
import XDR

// RFC 1813 §3.3.17 READDIRPLUS:
//   struct READDIRPLUS3args { nfs_fh3 dir; cookie3 cookie; cookieverf3 cookieverf;
//                             count3 dircount; count3 maxcount; };
//   struct entryplus3 { fileid3 fileid; filename3 name; cookie3 cookie;
//                       post_op_attr name_attributes; post_op_fh3 name_handle; entryplus3 *nextentry; };
//   struct dirlistplus3 { entryplus3 *entries; bool eof; };
//   struct READDIRPLUS3resok { post_op_attr dir_attributes; cookieverf3 cookieverf; dirlistplus3 reply; };
//   struct READDIRPLUS3resfail { post_op_attr dir_attributes; };
//
// As for READDIR, each entry is preceded by a TRUE value_follows and the list ends with FALSE.

public struct NFS3ReaddirplusCall: Hashable, Sendable {
    public var directory: NFS3FileHandle
    public var cookie: UInt64
    public var cookieVerifier: NFS3Verifier
    /// The most directory information (fileid, name, cookie) the client wants, in bytes.
    public var dirCount: UInt32
    /// The largest READDIRPLUS3resok the client accepts, in bytes.
    public var maxCount: UInt32
    public init(directory: NFS3FileHandle, cookie: UInt64, cookieVerifier: NFS3Verifier, dirCount: UInt32, maxCount: UInt32) {
        self.directory = directory; self.cookie = cookie; self.cookieVerifier = cookieVerifier
        self.dirCount = dirCount; self.maxCount = maxCount
    }
}

/// RFC 1813 §3.3.17 entryplus3.
public struct NFS3ReaddirplusEntry: Hashable, Sendable {
    public var fileid: UInt64
    public var name: [UInt8]
    public var cookie: UInt64
    /// name_attributes (post_op_attr).
    public var attributes: NFS3FileAttributes?
    /// name_handle (post_op_fh3).
    public var handle: NFS3FileHandle?
    public init(fileid: UInt64, name: [UInt8], cookie: UInt64, attributes: NFS3FileAttributes?, handle: NFS3FileHandle?) {
        self.fileid = fileid; self.name = name; self.cookie = cookie; self.attributes = attributes; self.handle = handle
    }

    /// Bytes an entry takes on the wire, including the value_follows bool in front of it, to
    /// count against maxcount: the READDIR entry, then post_op_attr (4, plus the fattr3 when
    /// present) and post_op_fh3 (4, plus the length word and padded handle when present).
    public static func encodedSize(nameLength: Int, hasAttributes: Bool, handleLength: Int?) -> Int {
        var n = NFS3ReaddirEntry.encodedSize(nameLength: nameLength)
        n += 4 + (hasAttributes ? NFS3FileAttributes.encodedSize : 0)
        n += 4
        if let handleLength { n += 4 + handleLength + ByteBuffer.xdrPadding(for: handleLength) }
        return n
    }

    /// Bytes an entry counts against dircount. RFC 1813 counts only fileid, name and cookie;
    /// Linux counts it as knfsd does, as the size of the READDIR entry3 (value_follows included),
    /// which is what this returns.
    public static func dirCountSize(nameLength: Int) -> Int {
        NFS3ReaddirEntry.encodedSize(nameLength: nameLength)
    }

    /// `encodedSize(nameLength:hasAttributes:handleLength:)` for this entry.
    public var encodedSize: Int {
        Self.encodedSize(nameLength: name.count, hasAttributes: attributes != nil, handleLength: handle?.bytes.count)
    }

    /// `dirCountSize(nameLength:)` for this entry.
    public var dirCountSize: Int { Self.dirCountSize(nameLength: name.count) }
}

public struct NFS3ReaddirplusOkay: Hashable, Sendable {
    public var directoryAttributes: NFS3FileAttributes?
    public var cookieVerifier: NFS3Verifier
    public var entries: [NFS3ReaddirplusEntry]
    public var eof: Bool
    public init(directoryAttributes: NFS3FileAttributes?, cookieVerifier: NFS3Verifier, entries: [NFS3ReaddirplusEntry],
                eof: Bool) {
        self.directoryAttributes = directoryAttributes; self.cookieVerifier = cookieVerifier
        self.entries = entries; self.eof = eof
    }

    /// Bytes of an OK READDIRPLUS3res with no entries (the same layout as READDIR's). The reply
    /// with entries is this plus the sum of their `encodedSize`.
    public static func encodedSizeWithoutEntries(hasDirectoryAttributes: Bool) -> Int {
        NFS3ReaddirOkay.encodedSizeWithoutEntries(hasDirectoryAttributes: hasDirectoryAttributes)
    }
}

public struct NFS3ReaddirplusReply: Sendable {
    /// The failure arm carries the directory's attributes.
    public var result: NFS3Result<NFS3ReaddirplusOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3ReaddirplusOkay, NFS3FileAttributes?>) { self.result = result }
}

extension ByteBuffer {
    public mutating func readNFS3ReaddirplusCall() throws -> NFS3ReaddirplusCall {
        NFS3ReaddirplusCall(directory: try readNFS3FileHandle(), cookie: try readXDRUInt64(),
                            cookieVerifier: try readNFS3Verifier(), dirCount: try readXDRUInt32(),
                            maxCount: try readXDRUInt32())
    }

    @discardableResult
    public mutating func writeNFS3ReaddirplusCall(_ call: NFS3ReaddirplusCall) -> Int {
        writeNFS3FileHandle(call.directory) + writeXDRUInt64(call.cookie) + writeNFS3Verifier(call.cookieVerifier)
            + writeXDRUInt32(call.dirCount) + writeXDRUInt32(call.maxCount)
    }

    public mutating func readNFS3ReaddirplusReply() throws -> NFS3ReaddirplusReply {
        NFS3ReaddirplusReply(result: try readNFS3Result(okay: { b in
            let directoryAttributes = try b.readNFS3PostOpAttributes()
            let cookieVerifier = try b.readNFS3Verifier()
            // No count is trusted: an entry is appended only once its bytes (at least 32) have
            // been read, so the list can never outgrow the record it came from.
            var entries: [NFS3ReaddirplusEntry] = []
            while try b.readXDRBool() {
                entries.append(NFS3ReaddirplusEntry(fileid: try b.readXDRUInt64(), name: try b.readNFS3Name(),
                                                    cookie: try b.readXDRUInt64(),
                                                    attributes: try b.readNFS3PostOpAttributes(),
                                                    handle: try b.readNFS3PostOpFileHandle()))
            }
            let eof = try b.readXDRBool()
            return NFS3ReaddirplusOkay(directoryAttributes: directoryAttributes, cookieVerifier: cookieVerifier,
                                       entries: entries, eof: eof)
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3ReaddirplusReply(_ reply: NFS3ReaddirplusReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            var n = b.writeNFS3PostOpAttributes(ok.directoryAttributes) + b.writeNFS3Verifier(ok.cookieVerifier)
            for entry in ok.entries { n += b.writeNFS3ReaddirplusEntry(entry) }
            return n + b.writeXDRBool(false) + b.writeXDRBool(ok.eof)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }

    /// Writes one entry with its value_follows TRUE in front; `NFS3ReaddirplusEntry.encodedSize` bytes.
    @discardableResult
    public mutating func writeNFS3ReaddirplusEntry(_ entry: NFS3ReaddirplusEntry) -> Int {
        writeXDRBool(true) + writeXDRUInt64(entry.fileid) + writeNFS3Name(entry.name) + writeXDRUInt64(entry.cookie)
            + writeNFS3PostOpAttributes(entry.attributes) + writeNFS3PostOpFileHandle(entry.handle)
    }
}
