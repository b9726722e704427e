/// The bytes of a file handle, opaque to clients (RFC 1813 §2.5: at most 64 bytes).
///
///     byte 0        format version (1)
///     bytes 1-8     export id (big-endian): scopes the handle to one export
///     bytes 9-16    file id (big-endian): the server's persistent identity of the file
///     bytes 17-24   SipHash-2-4 of bytes 0-16 under the server's handle key
///
/// Neither number is an inode or device number, so a handle stays valid when the served tree is
/// rebuilt on another disk, and when the file is renamed or moved (the index follows it). The
/// tag makes handles unforgeable: a handle altered in any byte fails the check.
public struct FileHandleFormat: Hashable, Sendable {
    public static let version: UInt8 = 1
    public static let length = 25
    static let signedLength = 17

    public var exportID: UInt64
    public var fileID: UInt64

    public init(exportID: UInt64, fileID: UInt64) {
        self.exportID = exportID
        self.fileID = fileID
    }

    /// The signed handle.
    public func bytes(key: SipHash24) -> [UInt8] {
        var out: [UInt8] = [Self.version]
        out.reserveCapacity(Self.length)
        Self.append(&out, exportID)
        Self.append(&out, fileID)
        Self.append(&out, key.hash(out))
        return out
    }

    /// Nil for anything that is not a well-formed handle of this format signed with `key`.
    public init?(bytes: [UInt8], key: SipHash24) {
        guard bytes.count == Self.length, bytes[0] == Self.version else { return nil }
        let e = Self.read(bytes, at: 1), f = Self.read(bytes, at: 9), tag = Self.read(bytes, at: 17)
        guard key.hash(bytes.prefix(Self.signedLength)) == tag, f != 0 else { return nil }
        self.init(exportID: e, fileID: f)
    }

    static func append(_ out: inout [UInt8], _ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    static func read(_ bytes: [UInt8], at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in at..<(at + 8) { v = v << 8 | UInt64(bytes[i]) }
        return v
    }
}
