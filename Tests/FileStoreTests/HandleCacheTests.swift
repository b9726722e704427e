import FileStore
import Foundation
import Glibc
import Logging
import NIOCore
import Testing

/// The handle cache through the store: what it counts, its bounds, and that no change to the
/// namespace, by the server or behind its back, makes it answer for the wrong file.
@Suite struct HandleCacheTests {
    func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    func open(_ scratch: Scratch, limits: HandleCacheLimits = HandleCacheLimits()) throws -> FileStore {
        try FileStore(root: scratch.export, stateDirectory: scratch.state, exportID: 42,
                      handleKey: try SipHash24.loadOrCreate(stateDirectory: scratch.state),
                      cacheLimits: limits, logger: Logger(label: "test"))
    }

    /// A new file whose place is in the cache.
    func cachedFile(_ store: FileStore, in dir: UInt64 = FileStore.rootID, _ n: String = "f") throws -> FileAttributes {
        let f = try store.create(dir, name: name(n), mode: 0o644, how: .guarded)
        _ = try store.attributes(of: f.fileID)
        return f
    }

    @Test func theFirstResolutionMissesAndTheNextOnesHit() throws {
        let scratch = try Scratch()
        let id = try open(scratch).create(FileStore.rootID, name: name("f"), mode: 0o644, how: .guarded).fileID
        let store = try open(scratch)
        #expect(store.cacheStatistics == HandleCacheStatistics())
        _ = try store.attributes(of: id)
        #expect(store.cacheStatistics.misses == 1 && store.cacheStatistics.hits == 0)
        for _ in 0..<5 { #expect(try store.attributes(of: id).fileID == id) }
        let s = store.cacheStatistics
        #expect(s.misses == 1 && s.hits == 5 && s.entries == 1)
    }

    @Test func entriesStayWithinTheBoundAndEvictedHandlesStillResolve() throws {
        let scratch = try Scratch()
        let store = try open(scratch, limits: HandleCacheLimits(entries: 4, descriptors: 100, shards: 1))
        let ids = try (0..<20).map { try store.create(FileStore.rootID, name: name("f\($0)"), mode: 0o644, how: .guarded).fileID }
        for id in ids { _ = try store.attributes(of: id) }
        let s = store.cacheStatistics
        #expect(s.entries <= 4)
        #expect(s.evictions >= 16)
        for id in ids { #expect(try store.attributes(of: id).fileID == id) }
    }

    @Test func openDescriptorsStayWithinTheBound() throws {
        let scratch = try Scratch()
        let store = try open(scratch, limits: HandleCacheLimits(entries: 1000, descriptors: 3, shards: 4))
        var files: [UInt64] = []
        for i in 0..<10 {
            let d = try store.makeDirectory(FileStore.rootID, name: name("d\(i)"), mode: 0o755)
            let f = try store.create(d.fileID, name: name("f"), mode: 0o644, how: .guarded)
            _ = try store.write(f.fileID, offset: 0, data: ByteBuffer(string: "\(i)"), durability: .unstable)
            files.append(f.fileID)
            #expect(store.cacheStatistics.descriptors <= 3)
        }
        for (i, f) in files.enumerated() {
            let read = try store.read(f, offset: 0, count: 10, allocator: ByteBufferAllocator())
            #expect(String(buffer: read.data) == "\(i)")
            #expect(store.cacheStatistics.descriptors <= 3)
        }
        #expect(store.cacheStatistics.evictions > 0)
    }

    @Test func renamesAndRemovesByTheServerInvalidate() throws {
        let scratch = try Scratch()
        let store = try open(scratch)
        let d = try store.makeDirectory(FileStore.rootID, name: name("d"), mode: 0o755)
        let f = try cachedFile(store)
        let before = store.cacheStatistics.invalidations
        try store.rename(FileStore.rootID, name: name("f"), to: d.fileID, name: name("g"))
        #expect(store.cacheStatistics.invalidations > before)
        #expect(try store.attributes(of: f.fileID).inode == f.inode)
        // The moved file is found at its new place without searching for it.
        let misses = store.cacheStatistics.misses
        _ = try store.attributes(of: f.fileID)
        #expect(store.cacheStatistics.misses == misses)
        try store.remove(d.fileID, name: name("g"))
        #expect(throws: StoreError.self) { try store.attributes(of: f.fileID) }
    }

    @Test func aRenameOfTheParentKeepsTheChildrenFound() throws {
        let scratch = try Scratch()
        let store = try open(scratch)
        let d = try store.makeDirectory(FileStore.rootID, name: name("d"), mode: 0o755)
        let f = try cachedFile(store, in: d.fileID)
        try store.rename(FileStore.rootID, name: name("d"), to: FileStore.rootID, name: name("e"))
        #expect(try store.attributes(of: f.fileID).inode == f.inode)
        #expect(try store.lookup(try store.lookup(FileStore.rootID, name: name("e")).fileID, name: name("f")).fileID == f.fileID)
    }

    @Test func aFileRenamedBehindTheServersBackIsAMissAndFoundAgain() throws {
        let scratch = try Scratch()
        let store = try open(scratch)
        let f = try cachedFile(store)
        let misses = store.cacheStatistics.misses
        try FileManager.default.moveItem(atPath: scratch.export + "/f", toPath: scratch.export + "/moved")
        #expect(try store.attributes(of: f.fileID).inode == f.inode)
        #expect(store.cacheStatistics.misses == misses + 1)
        #expect(try store.lookup(FileStore.rootID, name: name("moved")).fileID == f.fileID)
    }

    @Test func aFileReplacedBehindTheServersBackIsStaleNotTheNewFile() throws {
        let scratch = try Scratch()
        let store = try open(scratch)
        let f = try cachedFile(store)
        // Made while f still exists, so it cannot have f's inode number.
        FileManager.default.createFile(atPath: scratch.export + "/new", contents: Data("new".utf8))
        #expect(rename(scratch.export + "/new", scratch.export + "/f") == 0)
        #expect(throws: StoreError.self) { try store.attributes(of: f.fileID) }
        #expect(try store.lookup(FileStore.rootID, name: name("f")).fileID != f.fileID)
    }

    @Test func aDirectoryRemovedBehindTheServersBackIsStale() throws {
        let scratch = try Scratch()
        let store = try open(scratch)
        let d = try store.makeDirectory(FileStore.rootID, name: name("d"), mode: 0o755)
        _ = try store.create(d.fileID, name: name("f"), mode: 0o644, how: .guarded)
        #expect(try store.lookup(d.fileID, name: name("f")).type == .regular)
        try FileManager.default.removeItem(atPath: scratch.export + "/d")
        #expect(throws: StoreError.self) { try store.lookup(d.fileID, name: name("f")) }
        #expect(throws: StoreError.self) { try store.create(d.fileID, name: name("g"), mode: 0o644, how: .guarded) }
    }

    @Test func answersFromTheCacheAloneNeedAPlaceTheCacheAndTheIndexKnow() throws {
        let scratch = try Scratch()
        let first = try open(scratch)
        let d = try first.makeDirectory(FileStore.rootID, name: name("d"), mode: 0o755).fileID
        let f = try first.create(d, name: name("f"), mode: 0o644, how: .guarded).fileID
        let store = try open(scratch)
        #expect(store.cachedAttributes(of: f) == nil)
        #expect(store.cachedLookup(d, name: name("f")) == nil)
        #expect(try store.lookup(d, name: name("f")).fileID == f)
        #expect(store.cachedLookup(d, name: name("f"))?.fileID == f)
        #expect(store.cachedAccessCheck(d) { a, may in a.type == .directory && may(R_OK | X_OK) } == true)
        try FileManager.default.moveItem(atPath: scratch.export + "/d/f", toPath: scratch.export + "/d/g")
        #expect(store.cachedLookup(d, name: name("f")) == nil)
        // A name the index has not seen is the blocking way's to learn.
        #expect(store.cachedLookup(d, name: name("g")) == nil)
        #expect(try store.lookup(d, name: name("g")).fileID == f)
        #expect(store.cachedLookup(d, name: name("g"))?.fileID == f)
        #expect(store.cachedLookup(d, name: name("..")) == nil)
    }

    @Test func readsFromTheCachesNeedAnOpenDescriptorAndAreWhole() throws {
        let scratch = try Scratch()
        let store = try open(scratch)
        let allocator = ByteBufferAllocator()
        let f = try store.create(FileStore.rootID, name: name("f"), mode: 0o644, how: .guarded).fileID
        #expect(store.cachedRead(f, offset: 0, count: 5, allocator: allocator) == nil)
        _ = try store.write(f, offset: 0, data: ByteBuffer(string: "hello, world"), durability: .unstable)
        let read = try #require(store.cachedRead(f, offset: 7, count: 5, allocator: allocator))
        #expect(String(buffer: read.data) == "world" && read.eof && read.attributes.size == 12)
        let tail = try #require(store.cachedRead(f, offset: 10, count: 100, allocator: allocator))
        #expect(String(buffer: tail.data) == "ld" && tail.eof)
        let middle = try #require(store.cachedRead(f, offset: 0, count: 5, allocator: allocator))
        #expect(String(buffer: middle.data) == "hello" && !middle.eof)
    }

    @Test func concurrentRenamesNeverAnswerForAnotherFile() async throws {
        let scratch = try Scratch()
        let store = try open(scratch, limits: HandleCacheLimits(entries: 8, descriptors: 16, shards: 2))
        let files = try (0..<4).map { try store.create(FileStore.rootID, name: name("a\($0)"), mode: 0o644, how: .guarded) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, f) in files.enumerated() {
                group.addTask {
                    for n in 0..<200 {
                        let (from, to) = n % 2 == 0 ? ("a\(i)", "b\(i)") : ("b\(i)", "a\(i)")
                        try store.rename(FileStore.rootID, name: Array(from.utf8), to: FileStore.rootID, name: Array(to.utf8))
                    }
                }
                group.addTask {
                    // A lookup racing a rename may miss the file (as without a cache); an
                    // answer it gives must be the file's own.
                    for _ in 0..<400 {
                        guard let a = try? store.attributes(of: f.fileID) else { continue }
                        #expect(a.inode == f.inode && a.fileID == f.fileID)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(store.cacheStatistics.hits > 0)
    }
}
