import CNFSShims
import Glibc

/// An entry met by `walkTree`: its name, inode and type, and the directory that holds it.
public struct WalkEntry {
    /// A descriptor of the directory holding the entry (valid during the visit only).
    public let directory: Int32
    public let cName: UnsafePointer<CChar>
    public let inode: UInt64
    public let isDirectory: Bool

    public var name: [UInt8] {
        Array(UnsafeBufferPointer(start: UnsafeRawPointer(cName).assumingMemoryBound(to: UInt8.self), count: strlen(cName)))
    }

    /// The server's identity tag of the object (`user.swiftnfs.id`), if it has one.
    public var fileIDTag: UInt64? {
        var tag: UInt64 = 0
        return cnfs_get_file_id(directory, cName, &tag) == 0 ? tag : nil
    }
}

/// Walks the tree under the directory `root` depth first, never following a symlink, so it
/// never leaves the tree. `visit` sees every entry but `.` and `..` with the context of its
/// directory, and returns the context to walk a subdirectory with (nil: do not enter it).
/// Directories that cannot be opened are skipped. Open descriptors: one per level.
public func walkTree<Context>(_ root: Int32, _ context: Context,
                              _ visit: (WalkEntry, Context) throws -> Context?) rethrows {
    try walkDirectory(openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), context, visit)
}

private func walkDirectory<Context>(_ fd: Int32, _ context: Context,
                                    _ visit: (WalkEntry, Context) throws -> Context?) rethrows {
    guard fd >= 0 else { return }
    guard let dir = fdopendir(fd) else { close(fd); return }
    defer { closedir(dir) }
    let dirFD = dirfd(dir)
    while let entry = readdir(dir) {
        let cName = cnfs_dirent_name(entry)!
        if cName[0] == 46 && (cName[1] == 0 || (cName[1] == 46 && cName[2] == 0)) { continue }
        var isDirectory = entry.pointee.d_type == UInt8(DT_DIR)
        if entry.pointee.d_type == UInt8(DT_UNKNOWN) {
            var st = stat()
            isDirectory = fstatat(dirFD, cName, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFDIR
        }
        let e = WalkEntry(directory: dirFD, cName: cName, inode: UInt64(entry.pointee.d_ino), isDirectory: isDirectory)
        guard let child = try visit(e, context), isDirectory else { continue }
        try walkDirectory(openat(dirFD, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), child, visit)
    }
}
