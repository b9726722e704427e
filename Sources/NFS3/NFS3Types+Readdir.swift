import NIOCore
import XDR

// RFC 1813 §3.3.16 READDIR:
//   struct READDIR3args { nfs_fh3 dir; cookie3 cookie; cookieverf3 cookieverf; count3 count; };
//   struct entry3 { fileid3 fileid; filename3 name; cookie3 cookie; entry3 *nextentry; };
//   struct dirlist3 { entry3 *entries; bool eof; };
//   struct READDIR3resok { post_op_attr dir_attributes; cookieverf3 cookieverf; dirlist3 reply; };
//   struct READDIR3resfail { post_op_attr dir_attributes; };
//
// The entry list is an XDR optional-data linked list: each entry is preceded by a TRUE
// value_follows and the last by nothing, the list ending with a FALSE, then eof.

public struct NFS3ReaddirCall: Hashable, Sendable {
    public var directory: NFS3FileHandle
    public var cookie: UInt64
    public var cookieVerifier: NFS3Verifier
    /// The largest READDIR3resok the client accepts, in bytes.
    public var count: UInt32
    public init(directory: NFS3FileHandle, cookie: UInt64, cookieVerifier: NFS3Verifier, count: UInt32) {
        self.directory = directory; self.cookie = cookie; self.cookieVerifier = cookieVerifier; self.count = count
    }
}

/// RFC 1813 §3.3.16 entry3.
public struct NFS3ReaddirEntry: Hashable, Sendable {
    public var fileid: UInt64
    public var name: [UInt8]
    public var cookie: UInt64
    public init(fileid: UInt64, name: [UInt8], cookie: UInt64) { self.fileid = fileid; self.name = name; self.cookie = cookie }

    /// Bytes an entry takes on the wire, including the value_follows bool in front of it:
    /// value_follows (4) + fileid (8) + name length (4) + name and fill + cookie (8).
    public static func encodedSize(nameLength: Int) -> Int {
        4 + 8 + 4 + nameLength + ByteBuffer.xdrPadding(for: nameLength) + 8
    }

    /// `encodedSize(nameLength:)` for this entry.
    public var encodedSize: Int { Self.encodedSize(nameLength: name.count) }
}

public struct NFS3ReaddirOkay: Hashable, Sendable {
    public var directoryAttributes: NFS3FileAttributes?
    public var cookieVerifier: NFS3Verifier
    public var entries: [NFS3ReaddirEntry]
    public var eof: Bool
    public init(directoryAttributes: NFS3FileAttributes?, cookieVerifier: NFS3Verifier, entries: [NFS3ReaddirEntry], eof: Bool) {
        self.directoryAttributes = directoryAttributes; self.cookieVerifier = cookieVerifier
        self.entries = entries; self.eof = eof
    }

    /// Bytes of an OK READDIR3res with no entries: status (4), post_op_attr (4, plus the fattr3
    /// when present), cookieverf (8), the final value_follows FALSE (4) and eof (4). The reply
    /// with entries is this plus the sum of their `encodedSize`.
    public static func encodedSizeWithoutEntries(hasDirectoryAttributes: Bool) -> Int {
        4 + 4 + (hasDirectoryAttributes ? NFS3FileAttributes.encodedSize : 0) + 8 + 4 + 4
    }
}

public struct NFS3ReaddirReply: Sendable {
    /// The failure arm carries the directory's attributes.
    public var result: NFS3Result<NFS3ReaddirOkay, NFS3FileAttributes?>
    public init(result: NFS3Result<NFS3ReaddirOkay, NFS3FileAttributes?>) { self.result = result }
}

extension NFS3FileAttributes {
    /// Bytes a fattr3 takes on the wire (without the post_op_attr discriminant).
    public static let encodedSize = 84
}

extension ByteBuffer {
    public mutating func readNFS3ReaddirCall() throws -> NFS3ReaddirCall {
        NFS3ReaddirCall(directory: try readNFS3FileHandle(), cookie: try readXDRUInt64(),
                        cookieVerifier: try readNFS3Verifier(), count: try readXDRUInt32())
    }

    @discardableResult
    public mutating func writeNFS3ReaddirCall(_ call: NFS3ReaddirCall) -> Int {
        writeNFS3FileHandle(call.directory) + writeXDRUInt64(call.cookie) + writeNFS3Verifier(call.cookieVerifier)
            + writeXDRUInt32(call.count)
    }

    public mutating func readNFS3ReaddirReply() throws -> NFS3ReaddirReply {
        NFS3ReaddirReply(result: try readNFS3Result(okay: { b in
            let directoryAttributes = try b.readNFS3PostOpAttributes()
            let cookieVerifier = try b.readNFS3Verifier()
            // No count is trusted: an entry is appended only once its bytes (at least 24) have
            // been read, so the list can never outgrow the record it came from.
            var entries: [NFS3ReaddirEntry] = []
            while try b.readXDRBool() {
                entries.append(NFS3ReaddirEntry(fileid: try b.readXDRUInt64(), name: try b.readNFS3Name(),
                                                cookie: try b.readXDRUInt64()))
            }
            let eof = try b.readXDRBool()
            return NFS3ReaddirOkay(directoryAttributes: directoryAttributes, cookieVerifier: cookieVerifier,
                                   entries: entries, eof: eof)
        }, fail: { try $0.readNFS3PostOpAttributes() }))
    }

    @discardableResult
    public mutating func writeNFS3ReaddirReply(_ reply: NFS3ReaddirReply) -> Int {
        writeNFS3Result(reply.result, okay: { b, ok in
            var n = b.writeNFS3PostOpAttributes(ok.directoryAttributes) + b.writeNFS3Verifier(ok.cookieVerifier)
            for entry in ok.entries { n += b.writeNFS3ReaddirEntry(entry) }
            return n + b.writeXDRBool(false) + b.writeXDRBool(ok.eof)
        }, fail: { $0.writeNFS3PostOpAttributes($1) })
    }

    /// Writes one entry with its value_follows TRUE in front; `NFS3ReaddirEntry.encodedSize` bytes.
    @discardableResult
    public mutating func writeNFS3ReaddirEntry(_ entry: NFS3ReaddirEntry) -> Int {
        writeXDRBool(true) + writeXDRUInt64(entry.fileid) + writeNFS3Name(entry.name) + writeXDRUInt64(entry.cookie)
    }
}
