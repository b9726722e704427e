import CNFSShims
import FileStore
import Foundation
import Glibc
import Journal
import Testing

// Helpers of the tests that compare trees made by replaying journal changes.

/// Every path under `root` with its type, tag, content and the first path of its inode.
func treeSnapshot(_ root: String) throws -> [String: String] {
    var out: [String: String] = [:]
    var byInode: [UInt64: String] = [:]
    // Sorted, so the first path of a hard-linked file does not depend on directory order.
    let paths = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).sorted()
    for path in paths {
        let full = root + "/" + path
        var st = stat()
        #expect(lstat(full, &st) == 0)
        let dirFD = open((full as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
        var tag: UInt64 = 0
        let tagged = cnfs_get_file_id(dirFD, (full as NSString).lastPathComponent, &tag) == 0
        close(dirFD)
        let isDirectory = st.st_mode & S_IFMT == S_IFDIR
        let content = isDirectory ? Data() : try Data(contentsOf: URL(fileURLWithPath: full))
        let first = byInode[UInt64(st.st_ino), default: path]
        byInode[UInt64(st.st_ino)] = first
        out[path] = "\(isDirectory ? "dir" : "file \(first) \(content.count) \(content.hashValue)") tag \(tagged ? tag : 0)"
    }
    return out
}

/// `changes` applied once each to a new tree at `root`, and what that tree holds.
func appliedOnce(_ changes: [FileChange], at root: String) throws -> [String: String] {
    let applier = try TreeApplier(root: root)
    for c in changes { try applier.apply(c) }
    applier.close()
    return try treeSnapshot(root)
}
