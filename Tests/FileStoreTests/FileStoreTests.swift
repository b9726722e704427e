@testable import FileStore
import Foundation
import Glibc
import Logging
import NIOCore
import Testing

/// A fresh export directory and state directory under /tmp, removed at the end.
final class Scratch {
    let root: String
    let export: String
    let state: String

    init() throws {
        root = NSTemporaryDirectory() + "swiftnfs-store-\(UUID().uuidString)"
        export = root + "/export"
        state = root + "/state"
        try FileManager.default.createDirectory(atPath: export, withIntermediateDirectories: true)
    }

    func open() throws -> FileStore {
        try FileStore(root: export, stateDirectory: state, exportID: 42,
                      handleKey: try SipHash24.loadOrCreate(stateDirectory: state), logger: Logger(label: "test"))
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct FileStoreTests {
    let allocator = ByteBufferAllocator()

    func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func noIDForANameRemovedSinceItsStat() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        let dirFD = Glibc.open(scratch.export, O_RDONLY | O_DIRECTORY)
        defer { close(dirFD) }
        func inode(_ path: String) -> UInt64 {
            var st = stat()
            return lstat(path, &st) == 0 ? UInt64(st.st_ino) : 0
        }
        // Files made outside the server: the index does not know them yet. One is removed
        // between a LOOKUP's stat and its id: its inode number must get no id (a later file
        // with the same number would inherit it, and the removed file's handles with it).
        FileManager.default.createFile(atPath: scratch.export + "/gone", contents: Data("x".utf8))
        let goneInode = inode(scratch.export + "/gone")
        unlink(scratch.export + "/gone")
        #expect(store.discoveredID(dirFD: dirFD, dirID: FileStore.rootID, name: name("gone"), inode: goneInode) == nil)
        // One still there gets an id, the same each time.
        FileManager.default.createFile(atPath: scratch.export + "/here", contents: Data("y".utf8))
        let hereInode = inode(scratch.export + "/here")
        let first = store.discoveredID(dirFD: dirFD, dirID: FileStore.rootID, name: name("here"), inode: hereInode)
        #expect(first != nil)
        #expect(store.discoveredID(dirFD: dirFD, dirID: FileStore.rootID, name: name("here"), inode: hereInode) == first)
        #expect(try store.lookup(FileStore.rootID, name: name("here")).fileID == first)
    }

    @Test func handlesSurviveReopenAfterRenamesAcrossDirectories() throws {
        let scratch = try Scratch()
        var fileHandle: [UInt8] = []
        var dirHandle: [UInt8] = []
        var fileID: UInt64 = 0
        do {
            let store = try scratch.open()
            let a = try store.makeDirectory(FileStore.rootID, name: name("a"), mode: 0o755)
            let b = try store.makeDirectory(FileStore.rootID, name: name("b"), mode: 0o755)
            let f = try store.create(a.fileID, name: name("f"), mode: 0o644, how: .guarded)
            _ = try store.write(f.fileID, offset: 0, data: ByteBuffer(string: "payload"), durability: .file)
            // Move the file to another directory, then move that directory under the first.
            try store.rename(a.fileID, name: name("f"), to: b.fileID, name: name("g"))
            try store.rename(FileStore.rootID, name: name("b"), to: a.fileID, name: name("c"))
            fileHandle = store.handle(for: f.fileID)
            dirHandle = store.handle(for: b.fileID)
            fileID = f.fileID
        }
        // A new process: only the state directory carries the identities over.
        let store = try scratch.open()
        let id = try store.fileID(fromHandle: fileHandle)
        #expect(id == fileID)
        let attrs = try store.attributes(of: id)
        #expect(attrs.size == 7)
        #expect(attrs.fileID == fileID)
        let (data, eof, _) = try store.read(id, offset: 0, count: 100, allocator: allocator)
        #expect(String(buffer: data) == "payload")
        #expect(eof)
        #expect(try store.attributes(of: try store.fileID(fromHandle: dirHandle)).type == .directory)
        #expect(FileManager.default.fileExists(atPath: scratch.export + "/a/c/g"))
    }

    @Test func aFileMovedBehindTheServersBackIsFoundAgain() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        let d = try store.makeDirectory(FileStore.rootID, name: name("d"), mode: 0o755)
        let f = try store.create(d.fileID, name: name("f"), mode: 0o644, how: .unchecked)
        try FileManager.default.createDirectory(atPath: scratch.export + "/e", withIntermediateDirectories: false)
        try FileManager.default.moveItem(atPath: scratch.export + "/d/f", toPath: scratch.export + "/e/moved")
        #expect(try store.attributes(of: f.fileID).fileID == f.fileID)
        #expect(try store.lookup(try store.lookup(FileStore.rootID, name: name("e")).fileID, name: name("moved")).fileID == f.fileID)
    }

    @Test func foreignAndRemovedHandlesAreRefused() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        let f = try store.create(FileStore.rootID, name: name("f"), mode: 0o644, how: .guarded)
        let h = store.handle(for: f.fileID)
        // Every single-byte change fails the signature check.
        for i in h.indices {
            var altered = h
            altered[i] ^= 0x5a
            #expect(throws: StoreError(.badHandle, operation: "handle")) { try store.fileID(fromHandle: altered) }
        }
        #expect(throws: StoreError(.badHandle, operation: "handle")) { try store.fileID(fromHandle: Array(h.prefix(10))) }
        #expect(throws: StoreError(.badHandle, operation: "handle")) { try store.fileID(fromHandle: h + [0]) }
        // A correctly signed handle of another export is stale here.
        let other = FileHandleFormat(exportID: 43, fileID: f.fileID).bytes(key: try SipHash24.loadOrCreate(stateDirectory: scratch.state))
        #expect(throws: StoreError(.stale, operation: "handle")) { try store.fileID(fromHandle: other) }
        try store.remove(FileStore.rootID, name: name("f"))
        #expect(throws: StoreError(.stale, operation: "handle")) { try store.fileID(fromHandle: h) }
    }

    @Test func dotDotAtTheRootStaysAtTheRoot() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        #expect(try store.lookup(FileStore.rootID, name: name("..")).fileID == FileStore.rootID)
        let d = try store.makeDirectory(FileStore.rootID, name: name("d"), mode: 0o755)
        #expect(try store.lookup(d.fileID, name: name("..")).fileID == FileStore.rootID)
        #expect(throws: StoreError.self) { try store.lookup(FileStore.rootID, name: name("a/b")) }
    }

    @Test func lookupDoesNotFollowSymlinksOutOfTheExport() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        let l = try store.makeSymlink(FileStore.rootID, name: name("out"), target: name("/etc"))
        #expect(l.type == .symlink)
        #expect(try store.readLink(l.fileID) == name("/etc"))
        // Reading "through" the link is refused: the store never follows it.
        #expect(throws: StoreError.self) { try store.read(l.fileID, offset: 0, count: 10, allocator: allocator) }
        #expect(throws: StoreError.self) { try store.lookup(l.fileID, name: name("passwd")) }
    }

    @Test func exclusiveCreateIsIdempotentForTheSameVerifierOnly() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        let first = try store.create(FileStore.rootID, name: name("x"), mode: 0o600, how: .exclusive(0x1234_5678_9abc_def0))
        let again = try store.create(FileStore.rootID, name: name("x"), mode: 0o600, how: .exclusive(0x1234_5678_9abc_def0))
        #expect(first.fileID == again.fileID)
        #expect(throws: StoreError.self) {
            try store.create(FileStore.rootID, name: name("x"), mode: 0o600, how: .exclusive(1))
        }
        #expect(throws: StoreError.self) { try store.create(FileStore.rootID, name: name("x"), mode: 0o600, how: .guarded) }
    }

    @Test func directoryCookiesResumeWhileTheDirectoryChanges() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        for i in 0..<500 { _ = try store.create(FileStore.rootID, name: name("f\(i)"), mode: 0o644, how: .guarded) }
        var seen: [String] = []
        var cookie: UInt64 = 0
        var eof = false
        var calls = 0
        while !eof {
            var taken = 0
            eof = try store.readDirectory(FileStore.rootID, cookie: cookie, withAttributes: calls % 2 == 1) { entry, _ in
                guard taken < 37 else { return false }
                taken += 1
                seen.append(String(decoding: entry.name, as: UTF8.self))
                cookie = entry.cookie
                return true
            }
            calls += 1
            // Change the directory between calls: remove a name already listed, add a new one.
            if calls == 3 {
                try store.remove(FileStore.rootID, name: name(seen.last { $0.hasPrefix("f") }!))
                _ = try store.create(FileStore.rootID, name: name("new"), mode: 0o644, how: .guarded)
            }
        }
        let names = seen.filter { $0 != "." && $0 != ".." && $0 != "new" }
        #expect(Set(names).count == names.count, "no entry is listed twice")
        #expect(Set(names) == Set((0..<500).map { "f\($0)" }))
        #expect(seen.contains(".") && seen.contains(".."))
    }

    @Test func hardLinksShareOneIdentityAndOutliveARemove() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        let f = try store.create(FileStore.rootID, name: name("one"), mode: 0o644, how: .guarded)
        try store.link(f.fileID, to: FileStore.rootID, name: name("two"))
        #expect(try store.attributes(of: f.fileID).nlink == 2)
        #expect(try store.lookup(FileStore.rootID, name: name("two")).fileID == f.fileID)
        try store.remove(FileStore.rootID, name: name("two"))
        try store.remove(FileStore.rootID, name: name("one"))
        #expect(throws: StoreError.self) { try store.attributes(of: f.fileID) }
    }

    @Test func indexLogToleratesATornTail() throws {
        let scratch = try Scratch()
        var id: UInt64 = 0
        do {
            let store = try scratch.open()
            id = try store.create(FileStore.rootID, name: name("kept"), mode: 0o644, how: .guarded).fileID
        }
        // Append half a record, as a crash in the middle of an append would leave.
        let log = try FileManager.default.contentsOfDirectory(atPath: scratch.state).first { $0.hasSuffix(".log") }!
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: scratch.state + "/" + log))
        handle.seekToEndOfFile()
        handle.write(Data([1, 9, 9, 9]))
        try handle.close()
        let store = try scratch.open()
        #expect(try store.lookup(FileStore.rootID, name: name("kept")).fileID == id)
        let next = try store.create(FileStore.rootID, name: name("next"), mode: 0o644, how: .guarded)
        #expect(next.fileID != id)
    }
}

@Suite struct SipHashTests {
    /// The reference vectors of the SipHash paper (appendix A): key 00..0f, messages 00..(n-1).
    @Test func referenceVectors() {
        let key = SipHash24(key: Array(0..<16))
        #expect(key.hash([UInt8]()) == 0x726f_db47_dd0e_0e31)
        #expect(key.hash(Array(0..<15)) == 0xa129_ca61_49be_45e5)
        #expect(key.hash(Array(0..<8)) == 0x93f5_f579_9a93_2462)
    }
}

@Suite struct FileIdentityTests {
    func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func aForgottenIDIsNeverGivenToAnotherFile() throws {
        let scratch = try Scratch()
        var removedHandle: [UInt8] = []
        do {
            let store = try scratch.open()
            _ = try store.create(FileStore.rootID, name: Array("keep".utf8), mode: 0o644, how: .guarded)
            let gone = try store.create(FileStore.rootID, name: Array("gone".utf8), mode: 0o644, how: .guarded)
            removedHandle = store.handle(for: gone.fileID)
            try store.remove(FileStore.rootID, name: Array("gone".utf8))
        }
        // After a restart the highest id was forgotten; a new file must not get it.
        let store = try scratch.open()
        let fresh = try store.create(FileStore.rootID, name: Array("fresh".utf8), mode: 0o644, how: .guarded)
        #expect(store.handle(for: fresh.fileID) != removedHandle)
        #expect(throws: StoreError.self) { try store.fileID(fromHandle: removedHandle) }
    }

    /// Ids reserved (another node's, known from its journal) are given to no new file, after
    /// a restart too (the reservation is in the index's log).
    @Test func reservedIDsAreNeverGivenOut() throws {
        let scratch = try Scratch()
        do {
            let store = try scratch.open()
            store.reserveFileIDs(through: 100)
            #expect(try store.create(FileStore.rootID, name: name("a"), mode: 0o644, how: .guarded).fileID == 101)
            store.reserveFileIDs(through: 50)
            #expect(try store.create(FileStore.rootID, name: name("b"), mode: 0o644, how: .guarded).fileID == 102)
            store.reserveFileIDs(through: 200)
        }
        let store = try scratch.open()
        #expect(try store.create(FileStore.rootID, name: name("c"), mode: 0o644, how: .guarded).fileID == 201)
    }

    /// A file removed without the index hearing of it (a crash between the unlink and the
    /// index's `forget`, or a removal on the server itself) leaves its id on its inode number;
    /// a file the server creates next often gets that number back (ext4 reuses it at once).
    @Test func aNewFileNeverInheritsTheIDOfAnInodeNumberFreedBehindTheIndex() throws {
        let scratch = try Scratch()
        let store = try scratch.open()
        let old = try store.create(FileStore.rootID, name: name("old"), mode: 0o644, how: .guarded)
        let oldHandle = store.handle(for: old.fileID)
        #expect(unlink(scratch.export + "/old") == 0)
        let new = try store.create(FileStore.rootID, name: name("new"), mode: 0o644, how: .guarded)
        var st = stat()
        #expect(stat(scratch.export + "/new", &st) == 0)
        #expect(new.fileID != old.fileID, "inode \(st.st_ino) reused: the new file took the removed file's id")
        // The removed file's handle is stale, never the new file's.
        #expect(throws: StoreError.self) { try store.attributes(of: store.fileID(fromHandle: oldHandle)) }
        // The same for a directory, a symlink and an UNCHECKED create.
        let makers: [() throws -> FileAttributes] = [
            { try store.makeDirectory(FileStore.rootID, name: self.name("d"), mode: 0o755) },
            { try store.makeSymlink(FileStore.rootID, name: self.name("l"), target: self.name("x")) },
            { try store.create(FileStore.rootID, name: self.name("u"), mode: 0o644, how: .unchecked) },
        ]
        for (i, make) in makers.enumerated() {
            let victim = try store.create(FileStore.rootID, name: name("v\(i)"), mode: 0o644, how: .guarded)
            #expect(unlink(scratch.export + "/v\(i)") == 0)
            #expect(try make().fileID != victim.fileID)
        }
    }

    @Test func theIndexForgetsAnIDWhoseInodeNumberANewObjectTook() throws {
        let scratch = try Scratch()
        try FileManager.default.createDirectory(atPath: scratch.state, withIntermediateDirectories: true)
        let log = scratch.state + "/index.log"
        var stale: UInt64 = 0, fresh: UInt64 = 0
        do {
            let index = try FileIndex(logPath: log, rootInode: 2)
            stale = index.id(inode: 77, parent: FileIndex.rootID, name: name("old"))
            fresh = index.newID(inode: 77, parent: FileIndex.rootID, name: name("new"))
            #expect(fresh != stale)
            #expect(index.node(stale) == nil)
            #expect(index.knownID(inode: 77) == fresh)
            // An existing object keeps its id.
            #expect(index.id(inode: 77, parent: FileIndex.rootID, name: name("new")) == fresh)
        }
        // And so it stays after a restart, without reusing either id.
        let index = try FileIndex(logPath: log, rootInode: 2)
        #expect(index.node(stale) == nil)
        #expect(index.node(fresh)?.name == name("new"))
        let next = index.newID(inode: 78, parent: FileIndex.rootID, name: name("next"))
        #expect(next > fresh)
    }
}

/// A journal stand-in for the write-back test: records what it is given; `reserveRoom` (the
/// background copy's way in) blocks until the test opens the gate, then says there is no room.
final class GatedRecorder: ChangeRecorder, @unchecked Sendable {
    let lock = NSCondition()
    var gateOpen = false
    var reserving = false
    var writes: [(offset: UInt64, bytes: Int)] = []
    var sequence: UInt64 = 0

    func waitForRoom(bytes: Int) throws {}
    func reserveRoom(bytes: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        reserving = true
        lock.broadcast()
        while !gateOpen { lock.wait() }
        return false
    }
    func releaseRoom(bytes: Int) {}
    func record(_ change: FileChange, exportID: UInt64) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        sequence += 1
        return sequence
    }
    func recordWrite(fileID: UInt64, path: [UInt8], offset: UInt64, data: ByteBuffer, exportID: UInt64) -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        writes.append((offset, data.readableBytes))
        sequence += 1
        return sequence
    }
    func makeDurable(through sequence: UInt64) throws {}
    func whenDurable(through sequence: UInt64, _ done: @escaping @Sendable (Error?) -> Void) { done(nil) }
    var lastRecorded: UInt64 { lock.lock(); defer { lock.unlock() }; return sequence }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

@Suite struct WriteBackRaceTests {
    /// The background copy has taken a file's UNSTABLE ranges and is about to put them back
    /// (no room in the journal) when a COMMIT of the file comes: the COMMIT waits for it and
    /// copies the data itself, rather than find nothing to copy and answer with the data in
    /// neither the journal nor on its way there.
    @Test func commitWaitsForACopyInFlight() throws {
        let scratch = try Scratch()
        let recorder = GatedRecorder()
        let store = try FileStore(root: scratch.export, stateDirectory: scratch.state, exportID: 42,
                                  handleKey: try SipHash24.loadOrCreate(stateDirectory: scratch.state),
                                  recorder: recorder, writeBack: WriteBackSettings(delay: .seconds(60)),
                                  logger: Logger(label: "test"))
        let file = try store.create(FileStore.rootID, name: Array("f".utf8), mode: 0o644, how: .unchecked).fileID
        _ = try store.write(file, offset: 0, data: ByteBuffer(repeating: 7, count: 8192), durability: .unstable)
        #expect(recorder.writes.isEmpty, "UNSTABLE data went to the journal at once")
        // The background copy takes the ranges and stops at reserveRoom.
        let background = Thread { try? store.writeBack(file, waiting: false) }
        background.start()
        recorder.lock.lock()
        while !recorder.reserving { recorder.lock.wait() }
        recorder.lock.unlock()
        let returned = Flag()
        let commit = Thread {
            try? store.commit(file)
            returned.set()
        }
        commit.start()
        usleep(100_000)
        #expect(!returned.isSet, "COMMIT returned while the data was neither in the journal nor copied by it")
        // No room for the background copy: it puts the ranges back, and the COMMIT copies them.
        recorder.lock.lock(); recorder.gateOpen = true; recorder.lock.broadcast(); recorder.lock.unlock()
        let deadline = Date().addingTimeInterval(10)
        while !returned.isSet && Date() < deadline { usleep(10_000) }
        #expect(returned.isSet)
        recorder.lock.lock(); let writes = recorder.writes; recorder.lock.unlock()
        #expect(writes.count == 1 && writes.first?.offset == 0 && writes.first?.bytes == 8192, "journaled: \(writes)")
    }
}

@Suite struct DirectoryNamesTests {
    @Test("directoryNames gives every name but . and .., from one byte to 255, and nil for no directory")
    func names() throws {
        let dir = "/tmp/swiftnfs-names-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var made = ["a", String(repeating: "n", count: 255), "with space", "ünïcødé"]
        made += (0..<2000).map { String($0) }
        for n in made { #expect(FileManager.default.createFile(atPath: dir + "/" + n, contents: nil), "\(n)") }
        let listed = try #require(directoryNames(atPath: dir))
        #expect(listed.sorted() == made.sorted())
        #expect(directoryNames(atPath: dir + "/a") == nil, "a file")
        #expect(directoryNames(atPath: dir + "/missing") == nil)
        #expect(directoryNames(atPath: "/proc")?.contains(String(getpid())) == true)
    }
}

@Suite struct CallerIdentityTests {
    /// What the kernel says this thread's fsuid and fsgid are: the last of the four numbers of
    /// the Uid and Gid lines of /proc/thread-self/status.
    static func kernel() -> (UInt32, UInt32) {
        let status = (try? String(contentsOfFile: "/proc/thread-self/status", encoding: .utf8)) ?? ""
        func fs(_ field: String) -> UInt32 {
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.flatMap { UInt32($0) } ?? .max
        }
        return (fs("Uid"), fs("Gid"))
    }

    @Test("the identity a thread is known to have is the kernel's, inside apply, inside asRoot within it, and after")
    func trackedIdentityIsTheKernels() throws {
        let caller = CallerIdentity(uid: 1000, gid: 1001, groups: [1001, 27])
        #expect(CallerIdentity.current == (0, 0) && Self.kernel() == (0, 0))
        try caller.apply {
            #expect(CallerIdentity.current == (1000, 1001) && Self.kernel() == (1000, 1001))
            CallerIdentity.asRoot {
                #expect(CallerIdentity.current == (0, 0) && Self.kernel() == (0, 0))
            }
            #expect(CallerIdentity.current == (1000, 1001) && Self.kernel() == (1000, 1001))
        }
        #expect(CallerIdentity.current == (0, 0) && Self.kernel() == (0, 0))
    }
}
