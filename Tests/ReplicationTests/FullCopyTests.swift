import CNFSShims
import FileStore
import Foundation
import Journal
import Logging
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import Replication
import SwiftNFSTesting
import Synchronization
import Testing

/// The full copy over real sockets: an active whose journal no longer reaches back to a
/// standby (or whose history the standby does not share) sends it its checkpointed copies,
/// and the standby swaps them in, follows on, and can serve the same handles.
@Suite struct FullCopyTests {
    typealias Link = ReplicationLinkTests
    static var logger: Logger { Link.logger }

    /// An active without a server whose copies a checkpointer keeps (so it sends full copies).
    static func withSource<T>(_ directory: JournalDirectory, _ body: (JournalWriter, Checkpointer, Int) async throws -> T) async throws -> T {
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, logger: logger)
        defer { writer.stop() }
        let checkpointer = Checkpointer(directory: directory, writer: writer, logger: logger, syncServed: {})
        let source = ReplicationSource(writer: writer, directory: directory, checkpointer: checkpointer, logger: logger)
        let listener = try await ReplicationSource.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        let serving = Task { await source.serve(listener) }
        defer { serving.cancel() }
        let result = try await body(writer, checkpointer, listener.channel.localAddress?.port ?? 0)
        serving.cancel()
        await serving.value
        return result
    }

    /// Runs `body` on a thread of its own: the checkpoints and syncs here take long on a loaded
    /// disk, and must not hold one of the few threads that Swift concurrency (and the other
    /// suites' replication links, whose acknowledgements are timed) run on.
    static func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { done in
            Thread.detachNewThread { done.resume(with: Result { try body() }) }
        }
    }

    static func create(_ id: UInt64, _ name: String, _ type: FileType = .regular, target: String = "") -> FileChange {
        .create(fileID: id, path: Array(name.utf8), type: type, mode: 0o640, uid: 12, gid: 34, rdev: 0, target: Array(target.utf8))
    }

    static func write(_ id: UInt64, _ name: String, _ bytes: [UInt8], at offset: UInt64 = 0) -> FileChange {
        .write(fileID: id, path: Array(name.utf8), offset: offset, data: bytes)
    }

    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 9) ^ seed) }
    }

    /// Everything that identifies a copy's objects, by path: kind, mode, owner, mtime (unless
    /// `times` is false: a checkpoint's changes take the time they are applied), content digest
    /// (or link target), identity (tag, or the untagged record by inode), and for regular files
    /// the other paths of the same inode.
    static func describe(_ directory: JournalDirectory, exportID: UInt64, times: Bool = true) throws -> [String: String] {
        let root = directory.copyDirectory(exportID: exportID)
        let untagged = UntaggedIdentities.load(directory.untaggedIdentitiesPath(exportID: exportID))
        var out: [String: String] = [:]
        var inodes: [UInt64: [String]] = [:]
        let paths = try FileManager.default.subpathsOfDirectory(atPath: root).sorted()
        for path in [""] + paths {
            let full = path.isEmpty ? root : root + "/" + path
            var st = stat()
            guard lstat(full, &st) == 0 else { throw ToolFailure(message: "lstat \(full)", result: nil) }
            var tag: UInt64 = 0
            let parent = (full as NSString).deletingLastPathComponent, name = (full as NSString).lastPathComponent
            let dirFD = open(parent, CNFS_O_PATH | O_DIRECTORY)
            defer { close(dirFD) }
            let id = cnfs_get_file_id(dirFD, name, &tag) == 0 ? tag : untagged[UInt64(st.st_ino)] ?? 0
            var what = "mode \(String(st.st_mode, radix: 8)) owner \(st.st_uid):\(st.st_gid) id \(path.isEmpty ? 0 : id)"
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                let data = try Data(contentsOf: URL(fileURLWithPath: full))
                what += " size \(data.count) sum \(data.reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) })"
                if times { what += " mtime \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)" }
                if st.st_nlink > 1 { inodes[UInt64(st.st_ino), default: []].append(path) }
            case S_IFLNK:
                what += " -> " + (try FileManager.default.destinationOfSymbolicLink(atPath: full))
            default:
                if times { what += " mtime \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)" }
            }
            out[path] = what
        }
        for names in inodes.values { for n in names { out[n]! += " names \(names.sorted())" } }
        return out
    }

    // MARK: A standby that was away

    /// The active checkpointed past everything the standby has: it gets the copy (contents,
    /// owners, modes, times, hard links, symbolic links, identities), then the frames after it;
    /// and a server started on its durable directory serves the handles the active gave.
    @Test func aStandbyBehindACheckpointGetsAFullCopyAndServesTheSameHandles() async throws {
        let standbyRoot = NSTemporaryDirectory() + "swiftnfs-fullcopy-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: standbyRoot) }
        let standby = JournalDirectory(root: standbyRoot + "/durable")
        var options = TestServerOptions()
        options.durable = true
        options.replicationPort = 0
        options.checkpointInterval = .seconds(1)
        options.exportOptions.fsid = 77
        let big = Self.pattern(1_500_000, seed: 5)
        typealias Handles = [String: NFS3FileHandle]
        let (handles, handleKey): (Handles, Data) = try await withTestServer(options) { server, client, root in
            let active = JournalDirectory(root: try #require(server.durableDirectory))
            let port = try #require(server.replicationPort)
            var handles: Handles = [:]
            let a = try #require(try await client.create(root, Link.name("a")).object)
            for offset in stride(from: 0, to: big.count, by: 1 << 20) {
                _ = try await client.write(a, offset: UInt64(offset), data: ByteBuffer(bytes: big[offset..<min(big.count, offset + (1 << 20))]),
                                           stable: .fileSync)
            }
            let d = try #require(try await client.mkdir(root, Link.name("d")).object)
            let b = try #require(try await client.create(d, Link.name("b")).object)
            _ = try await client.write(b, offset: 0, data: ByteBuffer(bytes: Array("bee".utf8)), stable: .fileSync)
            let s = try #require(try await client.symlink(root, Link.name("s"), to: Link.name("a")).object)
            try await client.link(a, into: d, Link.name("hl"))
            (handles["a"], handles["d"], handles["d/b"], handles["s"]) = (a, d, b, s)
            // Checkpoints go on until the journal no longer holds record 1.
            var n = 0
            try await Link.eventually("record 1 checkpointed away", .seconds(30)) {
                n += 1
                let f = try #require(try await client.create(root, Link.name("filler-\(n)")).object)
                _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: [UInt8(n & 0xff)]), stable: .fileSync)
                try await Task.sleep(for: .milliseconds(300))
                return (active.segments().first?.first ?? 0) > 1 && active.checkpointedSequence() > 1
            }
            try await Link.withStandby(standby, following: port) { follower, writer in
                try await Link.eventually("a full copy installed", .seconds(30)) { follower.status.fullCopies == 1 }
                #expect(follower.status.fullCopy == nil)
                // Then the live journal: a write after the copy reaches it.
                _ = try await client.write(b, offset: 3, data: ByteBuffer(bytes: Array("hive".utf8)), stable: .fileSync)
                let last = JournalLog.summary(active, after: 0).lastSequence
                try await Link.eventually("following after the copy") { follower.status.acknowledged >= last && writer.status.durableSequence >= last }
            }
            // Both copies at the same record: the active's own checkpoint, the standby's by hand.
            let last = JournalLog.summary(active, after: 0).lastSequence
            try await Link.eventually("the active checkpointed everything", .seconds(10)) { active.checkpointedSequence() >= last }
            _ = try await Self.offloaded { try Checkpointer.checkpoint(directory: standby, through: last, syncServed: {}, rotate: {}) }
            #expect(standby.checkpointedSequence() == active.checkpointedSequence())
            #expect(standby.highestCheckpointedFileID() == active.highestCheckpointedFileID())
            let (theirs, ours) = try await Self.offloaded {
                (try Self.describe(active, exportID: 77, times: false), try Self.describe(standby, exportID: 77, times: false))
            }
            #expect(theirs.count > 6)
            for (path, what) in theirs { #expect(ours[path] == what, "\(path)") }
            #expect(ours.count == theirs.count)
            #expect(ours["a"]?.contains("names [\"a\", \"d/hl\"]") == true, "\(ours["a"] ?? "-")")
            return (handles, try Data(contentsOf: URL(fileURLWithPath: server.stateDirectory + "/handle-key")))
        }
        // A server on the standby's durable directory (an empty served tree, the cluster's handle
        // key), as a takeover starts: the old handles name the same files.
        try FileManager.default.createDirectory(atPath: standbyRoot + "/state", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: standbyRoot + "/export", withIntermediateDirectories: true)
        try handleKey.write(to: URL(fileURLWithPath: standbyRoot + "/state/handle-key"))
        var next = TestServerOptions()
        next.durable = true
        next.directory = standbyRoot
        next.exportOptions.fsid = 77
        try await withTestServer(next) { _, client, _ in
            let a = try #require(handles["a"]), b = try #require(handles["d/b"]), s = try #require(handles["s"])
            #expect(try await client.readAll(a) == big)
            #expect(String(decoding: try await client.readAll(b), as: UTF8.self) == "beehive")
            #expect(try await client.readlink(s).path == Link.name("a"))
            #expect(try await client.getattr(try #require(handles["d"])).type == .directory)
        }
    }

    // MARK: Another history

    /// A deposed active's record 3 is of epoch 3, the new active's of epoch 4: the standby gets
    /// the new active's checkpoint and then its frames, and its own record 3 is gone.
    @Test func aStandbyOfAnotherHistoryGetsAFullCopy() async throws {
        let active = Link.scratch("active"), deposed = Link.scratch("deposed")
        defer { for d in [active, deposed] { try? FileManager.default.removeItem(atPath: d.root) } }
        let old = try JournalWriter(directory: deposed, lastSequence: 0, uncheckpointedBytes: 0, logger: Self.logger)
        old.epoch.store(3, ordering: .relaxed)
        old.append(exportID: 1, Self.create(5, "f"))
        old.append(exportID: 1, Self.write(5, "f", Array("old".utf8)))
        old.append(exportID: 1, Self.create(6, "deposed-only"))
        try await Self.offloaded { try old.waitDurable(old.lastAppended) }
        old.stop()
        try await Self.withSource(active) { writer, checkpointer, port in
            writer.epoch.store(3, ordering: .relaxed)
            writer.append(exportID: 1, Self.create(5, "f"))
            writer.append(exportID: 1, Self.write(5, "f", Array("old".utf8)))
            writer.epoch.store(4, ordering: .relaxed)
            writer.append(exportID: 1, Self.write(5, "f", Array("new".utf8)))
            writer.append(exportID: 1, Self.create(7, "g"))
            try await Self.offloaded {
                try writer.waitDurable(writer.lastAppended)
                try checkpointer.checkpoint()
            }
            #expect(active.checkpointedSequence() == 4)
            writer.append(exportID: 1, Self.write(7, "g", Array("after".utf8)))
            try await Link.withStandby(deposed, following: port) { follower, standbyWriter in
                try await Link.eventually("copied and following") { follower.status.fullCopies == 1 && follower.status.acknowledged == 5 }
                #expect(standbyWriter.lastAppended == 5)
            }
            #expect(deposed.checkpointedSequence() == 4)
            // Its journal: the active's record 5 alone (record 3 of epoch 3 is gone with the old segments).
            #expect(try Link.frames(deposed) == Link.frames(active).filter { $0.key == 5 })
            let copy = deposed.copyDirectory(exportID: 1)
            #expect(try String(contentsOfFile: copy + "/f", encoding: .utf8) == "new")
            #expect(!FileManager.default.fileExists(atPath: copy + "/deposed-only"))
            let (ours, theirs) = try await Self.offloaded { (try Self.describe(deposed, exportID: 1), try Self.describe(active, exportID: 1)) }
            #expect(ours == theirs)
        }
    }

    // MARK: A standby stopped during a full copy

    /// The link cut after a few chunks of content (a relay between the two that stops): the
    /// standby keeps its old state (nothing installed), and the next run drops the partial copy
    /// and takes a whole one.
    @Test func aStandbyStoppedDuringAFullCopyStartsItAgainAndCompletesIt() async throws {
        let active = Link.scratch("active"), standby = Link.scratch("standby")
        defer { for d in [active, standby] { try? FileManager.default.removeItem(atPath: d.root) } }
        try await Self.withSource(active) { writer, checkpointer, port in
            writer.append(exportID: 1, Self.create(5, "big"))
            let big = Self.pattern(4 << 20, seed: 9)
            for offset in stride(from: 0, to: big.count, by: 1 << 20) {
                writer.append(exportID: 1, Self.write(5, "big", Array(big[offset..<offset + (1 << 20)]), at: UInt64(offset)))
            }
            writer.append(exportID: 1, Self.create(6, "small"))
            try await Self.offloaded {
                try writer.waitDurable(writer.lastAppended)
                try checkpointer.checkpoint()
                writer.append(exportID: 1, Self.write(6, "small", [1]))
                try writer.waitDurable(writer.lastAppended)
                try checkpointer.checkpoint()
            }
            #expect((active.segments().first?.first ?? 0) > 1)

            let relay = try await Relay.start(to: port, cutAfterData: 2)
            try await Link.withStandby(standby, following: relay.port) { follower, _ in
                try await Link.eventually("cut during the copy") { relay.cut.load(ordering: .acquiring) }
                try await Link.eventually("the link down") { !follower.status.connected }
                #expect(follower.status.fullCopies == 0)
            }
            relay.stop()
            // Stopped halfway: a partial staging directory, nothing installed.
            #expect(FileManager.default.fileExists(atPath: standby.fullCopyStaging))
            #expect(!standby.hasFullCopyReady)
            #expect(standby.checkpointedSequence() == 0)
            // The next run removes it and takes the whole copy.
            try await Link.withStandby(standby, following: port) { follower, _ in
                #expect(!FileManager.default.fileExists(atPath: standby.fullCopyStaging))
                try await Link.eventually("copied") { follower.status.fullCopies == 1 && follower.status.acknowledged == writer.lastAppended }
            }
            #expect(!FileManager.default.fileExists(atPath: standby.fullCopyStaging))
            #expect(try Data(contentsOf: URL(fileURLWithPath: standby.copyDirectory(exportID: 1) + "/big")) == Data(big))
            #expect(standby.checkpointedSequence() == active.checkpointedSequence())
        }
    }

    /// A full copy complete on disk (`full-copy.ready`) but not swapped in when the process
    /// stopped is installed at the next start, before the journal is read; one stopped while
    /// being swapped in is finished.
    @Test func aReadyFullCopyIsInstalledAtStartEvenHalfSwapped() async throws {
        try await Self.offloaded { try Self.installsAReadyFullCopy() }
    }

    static func installsAReadyFullCopy() throws {
        for stopAfterCopyMoved in [false, true] {
            let d = Link.scratch("settle")
            defer { try? FileManager.default.removeItem(atPath: d.root) }
            // The standby's own state: a copy, a checkpoint, a segment of another history.
            let writer = try JournalWriter(directory: d, lastSequence: 0, uncheckpointedBytes: 0, logger: Self.logger)
            for n in 0..<3 { writer.append(exportID: 1, Self.create(UInt64(10 + n), "own-\(n)")) }
            try writer.waitDurable(writer.lastAppended)
            writer.stop()
            _ = try Checkpointer.checkpoint(directory: d, through: 2, syncServed: {}, rotate: {})
            #expect(d.checkpointedSequence() == 2)
            // A full copy received whole: record 40, one export with a file.
            let staging = try FullCopyStaging(directory: d, sequence: 40, highestFileID: 99)
            try staging.take(FullCopyEntry(exportID: 1, path: [], kind: .directory, mode: 0o755))
            try staging.take(FullCopyEntry(exportID: 1, path: Link.name("x"), kind: .regular, size: 3, fileID: 42))
            try staging.write(ByteBuffer(bytes: [1, 2, 3]))
            try staging.finish(entries: 2)
            #expect(!d.hasFullCopyReady)
            try staging.markReady()
            #expect(d.hasFullCopyReady)
            if stopAfterCopyMoved {
                // Stopped after the old copy went and the new one came, before the rest.
                try FileManager.default.createDirectory(atPath: d.root + "/full-copy.old", withIntermediateDirectories: true)
                try FileManager.default.moveItem(atPath: d.root + "/copy", toPath: d.root + "/full-copy.old/copy")
                try FileManager.default.moveItem(atPath: d.fullCopyReady + "/copy", toPath: d.root + "/copy")
            }
            // Plus a stale staging directory of a later, unfinished copy.
            try FileManager.default.createDirectory(atPath: d.fullCopyStaging + "/copy/1", withIntermediateDirectories: true)
            #expect(try d.settleFullCopy())
            #expect(d.checkpointedSequence() == 40 && d.highestCheckpointedFileID() == 99)
            #expect(d.segments().isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: d.copyDirectory(exportID: 1)) == ["x"])
            for leftover in [d.fullCopyStaging, d.fullCopyReady, d.root + "/full-copy.old"] {
                #expect(!FileManager.default.fileExists(atPath: leftover), "\(leftover)")
            }
            #expect(try !d.settleFullCopy())
        }
    }

    /// A node that took over (its journal refuses replicated records) never installs a full
    /// copy it was receiving: nothing is committed, and what it had is dropped, so no later
    /// start installs the old active's history over its own.
    @Test func aNodeThatTookOverInstallsNoFullCopy() async throws {
        try await Self.offloaded {
            let d = Link.scratch("took-over")
            defer { try? FileManager.default.removeItem(atPath: d.root) }
            let writer = try JournalWriter(directory: d, lastSequence: 0, uncheckpointedBytes: 0, logger: Self.logger)
            defer { writer.stop() }
            writer.append(exportID: 1, Self.create(10, "own"))
            try writer.waitDurable(1)
            let staging = try FullCopyStaging(directory: d, sequence: 40, highestFileID: 99)
            try staging.take(FullCopyEntry(exportID: 1, path: [], kind: .directory, mode: 0o755))
            try staging.finish(entries: 1)
            writer.refuseReplicated(true)
            #expect(throws: JournalError.self) {
                try writer.replaceHistory(after: 40) {
                    try staging.markReady()
                    try d.installFullCopyIfReady()
                }
            }
            #expect(!d.hasFullCopyReady && d.checkpointedSequence() == 0 && writer.lastAppended == 1)
            try d.dropFullCopy()
            #expect(!FileManager.default.fileExists(atPath: d.fullCopyStaging))
            #expect(try !d.settleFullCopy())
        }
    }

    // MARK: Bad input from the peer

    /// A fake active whose full copy names a path outside the copy (`..`, absolute, through a
    /// symbolic link), or sends content without a file: refused with a clear error, nothing
    /// made outside the staging directory, nothing installed.
    @Test func aFullCopyThatLeavesTheCopyIsRefused() async throws {
        let root = FullCopyEntry(exportID: 1, path: [], kind: .directory, mode: 0o755)
        let link = FullCopyEntry(exportID: 1, path: Link.name("l"), kind: .symlink, target: Link.name("/tmp"))
        let cases: [(String, [ReplicationMessage], String)] = [
            ("dot-dot", [.fullCopyEntry(root), .fullCopyEntry(FullCopyEntry(exportID: 1, path: Link.name("../escape"), kind: .regular))],
             "not a plain relative path"),
            ("absolute", [.fullCopyEntry(root), .fullCopyEntry(FullCopyEntry(exportID: 1, path: Link.name("/tmp/escape"), kind: .regular))],
             "not a plain relative path"),
            ("symlink", [.fullCopyEntry(root), .fullCopyEntry(link), .fullCopyEntry(FullCopyEntry(exportID: 1, path: Link.name("l/escape"), kind: .regular))],
             "is not in the copy"),
            ("hard link", [.fullCopyEntry(root), .fullCopyEntry(FullCopyEntry(exportID: 1, path: Link.name("h"), kind: .hardLink, target: Link.name("../../etc/passwd")))],
             "not a plain relative path"),
            ("content", [.fullCopyEntry(root), .fullCopyData(ByteBuffer(bytes: [1]))], "content without a regular file"),
            ("too much", [.fullCopyEntry(root), .fullCopyEntry(FullCopyEntry(exportID: 1, path: Link.name("f"), kind: .regular, size: 1)),
                          .fullCopyData(ByteBuffer(bytes: [1, 2]))], "past the size"),
            ("no root", [.fullCopyEntry(FullCopyEntry(exportID: 1, path: Link.name("f"), kind: .regular))], "before its root"),
        ]
        for (what, messages, reason) in cases {
            let standby = Link.scratch("standby")
            defer { try? FileManager.default.removeItem(atPath: standby.root) }
            let escape = (standby.root as NSString).deletingLastPathComponent + "/escape"
            let fake = try await FakeActive.start(sending: [.fullCopyBegin(sequence: 9, highestFileID: 9, files: 1, bytes: 1)] + messages
                + [.fullCopyEnd(entries: 3)])
            defer { fake.stop() }
            let error = try await fake.followed(by: standby).error
            #expect(error?.code == .badFullCopy, "\(what): \(String(describing: error))")
            #expect(error?.detail.contains(reason) == true, "\(what): \(String(describing: error))")
            #expect(!FileManager.default.fileExists(atPath: escape), "\(what)")
            #expect(!FileManager.default.fileExists(atPath: "/tmp/escape"), "\(what)")
            #expect(!standby.hasFullCopyReady && standby.checkpointedSequence() == 0, "\(what)")
        }
    }

    /// An active of an older protocol version closes the link at the HELLO it does not take:
    /// the standby says so rather than nothing.
    @Test func aStandbySaysWhenTheActiveClosesWithoutAnAnswer() async throws {
        let standby = Link.scratch("standby")
        defer { try? FileManager.default.removeItem(atPath: standby.root) }
        let old = try await FakeActive.start(sending: [], thenClose: true)
        defer { old.stop() }
        let error = try await old.followed(by: standby).error
        #expect(error?.code == .refused && error?.detail.contains("older protocol") == true, "\(String(describing: error))")
    }

    /// A peer that sends the active garbage (an unknown message, a full copy message of its own)
    /// is dropped; the active goes on serving the standby that follows it properly.
    @Test func anActiveDropsAPeerThatSendsGarbageAndGoesOnServing() async throws {
        let active = Link.scratch("active"), standby = Link.scratch("standby")
        defer { for d in [active, standby] { try? FileManager.default.removeItem(atPath: d.root) } }
        try await Self.withSource(active) { writer, _, port in
            writer.append(exportID: 1, Self.create(5, "f"))
            try await Link.withStandby(standby, following: port) { follower, _ in
                try await Link.eventually("following") { follower.status.acknowledged == 1 }
                for garbage: [UInt8] in [[0, 0, 0, 99, 0, 0, 0, 0], Array(ByteBuffer.message(.fullCopyData(ByteBuffer(bytes: [7]))).readableBytesView)] {
                    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port)
                        .get()
                    try await channel.writeAndFlush(ByteBuffer(bytes: Array(ByteBuffer.message(.hello(name: "evil", after: 1)).readableBytesView) + garbage))
                    try await channel.closeFuture.get()
                }
                writer.append(exportID: 1, Self.write(5, "f", [1]))
                try await Link.eventually("still following") { follower.status.acknowledged == 2 }
            }
        }
    }
}
