import FileStore

/// One object of a durable copy as a full copy carries it from an HA active to a standby
/// (`FullCopyReader` reads them, `FullCopyStaging` writes them). A regular file's content
/// follows its entry, `size` bytes in order; a hard link names the earlier entry it is another
/// name of. `fileID` is the object's identity (its `user.swiftnfs.id` tag, or the active's
/// record of an untagged object): the standby tags its copy with it, so that a served tree
/// rebuilt from that copy resolves the clients' handles as the active did.
package struct FullCopyEntry: Hashable, Sendable {
    package enum Kind: UInt32, Sendable {
        case regular = 1, directory, symlink, hardLink, fifo, socket, characterDevice, blockDevice
    }

    package var exportID: UInt64
    /// Relative to the export's copy, components separated by "/"; empty: the export's root.
    package var path: [UInt8]
    package var kind: Kind
    package var mode: UInt32
    package var uid: UInt32
    package var gid: UInt32
    package var rdev: UInt64
    package var atime: FileTime
    package var mtime: FileTime
    /// A regular file's bytes (they follow); 0 for the other kinds.
    package var size: UInt64
    /// 0: none known.
    package var fileID: UInt64
    /// A symbolic link's target, or the path (in the same export) a hard link is another name of.
    package var target: [UInt8]

    package init(exportID: UInt64, path: [UInt8], kind: Kind, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0,
                 rdev: UInt64 = 0, atime: FileTime = FileTime(seconds: 0, nanoseconds: 0),
                 mtime: FileTime = FileTime(seconds: 0, nanoseconds: 0), size: UInt64 = 0, fileID: UInt64 = 0, target: [UInt8] = []) {
        self.exportID = exportID
        self.path = path
        self.kind = kind
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.atime = atime
        self.mtime = mtime
        self.size = size
        self.fileID = fileID
        self.target = target
    }
}

/// Whether `path` is a plain relative path (or empty: the root): no empty, "." or ".."
/// component, no NUL, not absolute. A path from the journal or from a peer that is not is
/// refused before anything is made of it.
package func isPlainRelativePath(_ path: [UInt8]) -> Bool {
    path.isEmpty || path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).allSatisfy {
        !$0.isEmpty && !$0.elementsEqual([46]) && !$0.elementsEqual([46, 46]) && !$0.contains(0)
    }
}

/// `body` with `bytes` as a C string (a path or name of the journal, a peer's).
func withCPath<T>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
    try (bytes + [0]).withUnsafeBufferPointer { try $0.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) } }
}
