import CNFSShims
import FileStore
import Foundation
import Glibc
@testable import Journal
import Logging
import Testing

/// A checkpoint stopped by a crash of the server process resumes after the last record it
/// applied, on a real directory: with directories renamed after hard links were made in them,
/// replaying records the copy already has would not be harmless.
@Suite("Checkpoint resume", .enabled(if: getuid() == 0, "replays run as root, as the server does"))
struct CheckpointResumeTests {
    static let export: UInt64 = 0x51

    /// A random run of changes across directories: directories made and renamed with what is
    /// in them, files created, written, linked and renamed across directories, and removed.
    static func workload(seed: UInt64, count: Int) -> [FileChange] {
        var rng = seed
        func next(_ n: Int) -> Int {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((rng >> 33) % UInt64(n))
        }
        var files: [String: UInt64] = [:]
        var directories: [String: UInt64] = [:]
        var nextID: UInt64 = 2, nextName = 0
        var changes: [FileChange] = []
        func b(_ s: String) -> [UInt8] { Array(s.utf8) }
        func newPath(_ prefix: String) -> String {
            nextName += 1
            let dirs = directories.keys.sorted()
            let parent = dirs.isEmpty || prefix == "d" || next(3) == 0 ? "" : dirs[next(dirs.count)] + "/"
            return parent + prefix + "\(nextName)"
        }
        while changes.count < count {
            let paths = files.keys.sorted()
            let pick = paths.isEmpty ? "" : paths[next(paths.count)]
            switch paths.isEmpty ? 0 : next(8) {
            case 0:
                let path = newPath("f")
                files[path] = nextID
                changes.append(.create(fileID: nextID, path: b(path), type: .regular, mode: 0o644, uid: 0, gid: 0, rdev: 0, target: []))
                nextID += 1
            case 1:
                let data = (0..<(1 + next(2000))).map { _ in UInt8(next(256)) }
                changes.append(.write(fileID: files[pick]!, path: b(pick), offset: UInt64(next(3000)), data: data))
            case 2:
                let path = newPath("f")
                files[path] = files.removeValue(forKey: pick)
                changes.append(.rename(fileID: files[path]!, from: b(pick), to: b(path)))
            case 3:
                let path = newPath("f")
                files[path] = files[pick]
                changes.append(.link(fileID: files[pick]!, existing: b(pick), new: b(path)))
            case 4:
                changes.append(.remove(fileID: files.removeValue(forKey: pick)!, path: b(pick), isDirectory: false))
            case 5:
                let path = newPath("d")
                directories[path] = nextID
                changes.append(.create(fileID: nextID, path: b(path), type: .directory, mode: 0o755, uid: 0, gid: 0, rdev: 0, target: []))
                nextID += 1
            default:
                guard let old = directories.keys.sorted().first else { continue }
                let new = newPath("d")
                directories[new] = directories.removeValue(forKey: old)
                for path in files.keys where path.hasPrefix(old + "/") {
                    files[new + path.dropFirst(old.count)] = files.removeValue(forKey: path)
                }
                changes.append(.rename(fileID: directories[new]!, from: b(old), to: b(new)))
            }
        }
        return changes
    }

    @Test("a checkpoint stopped after any record resumes to the same copy", arguments: [5, 6, 7])
    func resume(seed: UInt64) throws {
        let changes = Self.workload(seed: seed, count: 80)
        let base = NSTemporaryDirectory() + "swiftnfs-resume-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let expected = try appliedOnce(changes, at: base + "/once")
        for stopped in stride(from: 0, through: changes.count, by: 7) {
            let directory = JournalDirectory(root: base + "/durable-\(stopped)")
            let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0,
                                           logger: Logger(label: "test"))
            var sequences: [UInt64] = []
            for c in changes { sequences.append(writer.append(exportID: Self.export, c)) }
            try writer.waitDurable(writer.lastAppended)
            // A checkpoint that applied `stopped` records, then the process died.
            let copy = try TreeApplier(root: directory.copyDirectory(exportID: Self.export))
            for c in changes.prefix(stopped) { try copy.apply(c) }
            copy.close()
            let marker = try CopyProgressMarker(directory, through: stopped == 0 ? 0 : sequences[stopped - 1])
            _ = marker
            #expect(directory.copyProgress() == .through(stopped == 0 ? 0 : sequences[stopped - 1]))
            let report = try Checkpointer.checkpoint(directory: directory, through: .max, syncServed: {}, rotate: {})
            #expect(report.appliedThrough == sequences.last)
            #expect(directory.copyProgress() == .none)
            let actual = try treeSnapshot(directory.copyDirectory(exportID: Self.export))
            #expect(actual == expected, "seed \(seed), stopped after \(stopped): \(Set(actual.keys).symmetricDifference(expected.keys).sorted()) differ in presence, \(actual.filter { expected[$0.key] != nil && expected[$0.key] != $0.value }.keys.sorted()) in content")
        }
    }

    /// A checkpoint keeps the highest file id of the records it applied, removed files'
    /// included, beside the sequence: the records go, the ids must not come back.
    @Test func aCheckpointKeepsTheHighestFileID() throws {
        let base = NSTemporaryDirectory() + "swiftnfs-ids-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let directory = JournalDirectory(root: base)
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, logger: Logger(label: "test"))
        func b(_ s: String) -> [UInt8] { Array(s.utf8) }
        func create(_ id: UInt64, _ name: String) -> FileChange {
            .create(fileID: id, path: b(name), type: .regular, mode: 0o644, uid: 0, gid: 0, rdev: 0, target: [])
        }
        #expect(directory.highestCheckpointedFileID() == 0)
        for c in [create(7, "a"), .write(fileID: 7, path: b("a"), offset: 0, data: [1]), create(12, "b"),
                  .remove(fileID: 12, path: b("b"), isDirectory: false)] {
            writer.append(exportID: Self.export, c)
        }
        try writer.waitDurable(writer.lastAppended)
        try Checkpointer.checkpoint(directory: directory, through: .max, syncServed: {}, rotate: {})
        #expect(directory.checkpointedSequence() == writer.lastAppended)
        #expect(directory.highestCheckpointedFileID() == 12)
        writer.append(exportID: Self.export, create(3, "c"))
        try writer.waitDurable(writer.lastAppended)
        try Checkpointer.checkpoint(directory: directory, through: .max, syncServed: {}, rotate: {})
        #expect(directory.checkpointedSequence() == writer.lastAppended)
        #expect(directory.highestCheckpointedFileID() == 12)
        #expect(JournalLog.summary(directory, after: 0).highestFileID == 12)
    }
}
