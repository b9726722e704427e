import CNFSShims
import FileStore
import Foundation
import Glibc
import Journal
import Testing

/// Replaying journal changes onto a tree that may already have some of them, on a real
/// directory: the durable copy after an interrupted checkpoint, and a served tree rebuilt from
/// such a copy, must end exactly where a tree that got each change once ends.
@Suite("Tree applier", .enabled(if: getuid() == 0, "replays run as root, as the server does"))
struct TreeApplierTests {
    /// A random run of the changes a server records in one directory (creates, writes,
    /// truncates, renames to new names, hard links, removes), each valid where it is recorded.
    static func workload(seed: UInt64, count: Int) -> [FileChange] {
        var rng = seed
        func next(_ n: Int) -> Int {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((rng >> 33) % UInt64(n))
        }
        var names: [String: UInt64] = [:]  // name -> file id
        var nextID: UInt64 = 2, nextName = 0
        var changes: [FileChange] = []
        func path(_ s: String) -> [UInt8] { Array(s.utf8) }
        func newName() -> String {
            nextName += 1
            return "n\(nextName)"
        }
        while changes.count < count {
            let existing = names.keys.sorted()
            let pick = existing.isEmpty ? "" : existing[next(existing.count)]
            switch existing.isEmpty ? 0 : next(6) {
            case 0:
                let name = newName()
                names[name] = nextID
                changes.append(.create(fileID: nextID, path: path(name), type: .regular, mode: 0o644, uid: 0, gid: 0, rdev: 0, target: []))
                nextID += 1
            case 1:
                let data = (0..<(1 + next(3000))).map { _ in UInt8(next(256)) }
                changes.append(.write(fileID: names[pick]!, path: path(pick), offset: UInt64(next(4000)), data: data))
            case 2:
                changes.append(.setAttributes(fileID: names[pick]!, path: path(pick), AttributeValues(size: UInt64(next(3000)))))
            case 3:
                let name = newName()
                names[name] = names.removeValue(forKey: pick)
                changes.append(.rename(fileID: names[name]!, from: path(pick), to: path(name)))
            case 4:
                let name = newName()
                names[name] = names[pick]
                changes.append(.link(fileID: names[pick]!, existing: path(pick), new: path(name)))
            default:
                changes.append(.remove(fileID: names.removeValue(forKey: pick)!, path: path(pick), isDirectory: false))
            }
        }
        return changes
    }

    @Test("a tree that is ahead by any number of changes ends where the tree that got each once does",
          arguments: [1, 2, 3, 4])
    func replayOntoATreeThatIsAhead(seed: UInt64) throws {
        let changes = Self.workload(seed: seed, count: 60)
        let base = NSTemporaryDirectory() + "swiftnfs-applier-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let expected = try appliedOnce(changes, at: base + "/once")
        for ahead in stride(from: 0, through: changes.count, by: 3) {
            let tree = base + "/ahead-\(ahead)"
            let first = try TreeApplier(root: tree)
            for c in changes.prefix(ahead) { try first.apply(c) }
            first.close()
            // Everything again, from the start, onto the tree that already has `ahead` changes.
            let again = try TreeApplier(root: tree, mayBeAhead: true)
            for c in changes { try again.apply(c) }
            again.close()
            let actual = try treeSnapshot(tree)
            #expect(actual == expected, "seed \(seed), \(ahead) changes ahead: \(actual.filter { expected[$0.key] != $0.value }.keys.sorted()) differ, \(expected.keys.filter { actual[$0] == nil }.sorted()) missing")
        }
    }

    /// A copy keeps the ids of the objects it could not tag (a symbolic link, a fifo) by inode
    /// number, durably with the copy; a tagged file is not in that record.
    @Test func aCopyKeepsTheIdsOfObjectsItCannotTag() throws {
        let base = NSTemporaryDirectory() + "swiftnfs-untagged-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let log = base + "/untagged"
        let applier = try TreeApplier(root: base + "/copy", untaggedLog: log)
        func create(_ id: UInt64, _ name: String, _ type: FileType, target: String = "") -> FileChange {
            .create(fileID: id, path: Array(name.utf8), type: type, mode: 0o644, uid: 0, gid: 0, rdev: 0, target: Array(target.utf8))
        }
        try applier.apply(create(42, "link", .symlink, target: "file"))
        try applier.apply(create(43, "fifo", .fifo))
        try applier.apply(create(44, "file", .regular))
        try applier.apply(.rename(fileID: 42, from: Array("link".utf8), to: Array("moved".utf8)))
        try applier.sync()
        let ids = UntaggedIdentities.load(log)
        #expect(applier.inode(of: Array("moved".utf8)).flatMap { ids[$0] } == 42)
        #expect(applier.inode(of: Array("fifo".utf8)).flatMap { ids[$0] } == 43)
        let fileInode = try #require(applier.inode(of: Array("file".utf8)))
        // Tagged where the file system keeps user.* attributes; recorded by inode where not.
        var tag: UInt64 = 0
        let copyFD = open(base + "/copy", O_RDONLY | O_DIRECTORY)
        defer { close(copyFD) }
        let tagged = cnfs_get_file_id(copyFD, "file", &tag) == 0
        #expect(tagged ? ids[fileInode] == nil : ids[fileInode] == 44)
        applier.close()
    }
}
