/// The bytes of a file handle, opaque to clients (RFC 1813 §2.5: at most 64 bytes).
///
///     byte 0       format version (1)
///     bytes 1-8    export id (big-endian): scopes the handle to one export
///     bytes 9-16   file id (big-endian): the server's persistent identity of the file
///
/// Neither number is an inode or device number, so a handle stays valid when the served tree is
/// rebuilt on another disk, and when the file is renamed or moved (the index follows it).
public struct FileHandleFormat: Hashable, Sendable {
    public static let version: UInt8 = 1
    public static let length = 17

    public var exportID: UInt64
    public var fileID: UInt64

    public init(exportID: UInt64, fileID: UInt64) {
        self.exportID = exportID
        self.fileID = fileID
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = [Self.version]
        out.reserveCapacity(Self.length)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: exportID >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: fileID >> UInt64(shift))) }
        return out
    }

    /// Nil for anything that is not a well-formed handle of this format.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.length, bytes[0] == Self.version else { return nil }
        var e: UInt64 = 0, f: UInt64 = 0
        for i in 1...8 { e = e << 8 | UInt64(bytes[i]) }
        for i in 9...16 { f = f << 8 | UInt64(bytes[i]) }
        guard f != 0 else { return nil }
        self.init(exportID: e, fileID: f)
    }
}
