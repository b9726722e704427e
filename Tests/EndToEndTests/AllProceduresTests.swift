import Foundation
import Mount
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import Testing
import XDR

/// Every one of the 22 NFSv3 procedures, and MOUNT's MNT, DUMP, EXPORT and UMNT, through the
/// wire with NFS3Client, with the details clients depend on: WCC data, link counts, the
/// exclusive-create verifier, the SETATTR guard, READLINK's target, cookies, the limits.
@Suite("All NFSv3 procedures")
struct AllProceduresTests {
    @Test("the 22 procedures over TCP against a real directory")
    func everyProcedure() async throws {
        try await ServerProcess.with(portmap: .none) { server in
            let c = try await server.connectAsRoot()
            let root = try await c.mount(server.exportPath)
            // MOUNT EXPORT and DUMP: the export is listed, and this client's mount of it.
            #expect(try await c.exports().map(\.directory) == [server.exportPath])
            #expect(try await c.mounts() == [MountEntry(hostname: "127.0.0.1", directory: server.exportPath)])
            try await c.null()                                                          // 0 NULL
            let rootAttributes = try await c.getattr(root)                              // 1 GETATTR
            #expect(rootAttributes.type == .directory && rootAttributes.nlink >= 2)
            let dir = try await c.mkdir(root, Array("d".utf8))                          // 9 MKDIR
            let d = try #require(dir.object)
            #expect(dir.directoryWCC.before != nil && dir.directoryWCC.after != nil)
            #expect(try await c.getattr(root).nlink == rootAttributes.nlink + 1)
            let created = try await c.create(d, Array("f".utf8))                         // 8 CREATE
            let f = try #require(created.object)
            let w = try await c.write(f, offset: 0, data: ByteBuffer(string: "hello, world"), stable: .unstable)  // 7 WRITE
            #expect(w.count == 12 && w.committed == .unstable)
            let commit = try await c.commit(f, offset: 0, count: 0)                     // 21 COMMIT
            #expect(commit.verifier == w.verifier)
            let read = try await c.read(f, offset: 7, count: 100)                       // 6 READ
            #expect(String(buffer: read.data) == "world" && read.eof)
            #expect(try await c.lookup(d, Array("f".utf8)).objectAttributes?.fileid == created.attributes?.fileid)  // 3 LOOKUP
            let access = try await c.access(f, mask: NFS3AccessMask.read | NFS3AccessMask.modify)  // 4 ACCESS
            #expect(access.access == NFS3AccessMask.read | NFS3AccessMask.modify)
            // 2 SETATTR with a ctime guard: the wrong ctime is NFS3ERR_NOT_SYNC, the right one works.
            let before = try await c.getattr(f)
            await expectStatus(.notSync, "SETATTR with a stale ctime guard") {
                try await c.setattr(f, NFS3SetAttributes(mode: 0o600), guardCtime: NFS3Time(seconds: 1, nanoseconds: 0))
            }
            let guarded = try await c.setattr(f, NFS3SetAttributes(mode: 0o600, size: 5), guardCtime: before.ctime)
            #expect(guarded.before?.size == 12 && guarded.after?.size == 5)
            let after = try await c.getattr(f)
            #expect(after.mode == 0o600 && after.size == 5)
            // 10 SYMLINK and 5 READLINK: the target comes back as it was given, even one that
            // points nowhere.
            let symlink = try await c.symlink(d, Array("l".utf8), to: Array("f".utf8))
            let l = try #require(symlink.object)
            #expect(symlink.attributes?.type == .link && symlink.attributes?.size == 1)
            let readlink = try await c.readlink(l)
            #expect(readlink.path == Array("f".utf8) && readlink.attributes?.fileid == symlink.attributes?.fileid)
            let dangling = try #require(try await c.symlink(d, Array("dangling".utf8), to: Array("../nowhere/x".utf8)).object)
            #expect(try await c.readlink(dangling).path == Array("../nowhere/x".utf8))
            await expectStatus(.inval, "READLINK of a regular file") { try await c.readlink(f) }
            try await c.remove(d, Array("dangling".utf8))
            // 11 MKNOD: a FIFO; a type that is no special file is NFS3ERR_BADTYPE.
            let fifo = try await c.mknod(d, Array("p".utf8), .fifo(NFS3SetAttributes(mode: 0o640)))
            #expect(fifo.attributes?.type == .fifo && fifo.attributes?.mode == 0o640)
            #expect(fifo.directoryWCC.after != nil)
            #expect(try await c.getattr(try await c.lookup(d, Array("p".utf8)).object).type == .fifo)
            await expectStatus(.badtype, "MKNOD of a regular file") {
                try await c.mknod(d, Array("q".utf8), .other(.regular))
            }
            await expectStatus(.exist, "MKNOD over a name in use") {
                try await c.mknod(d, Array("p".utf8), .fifo(NFS3SetAttributes()))
            }
            // 15 LINK: the link count goes to 2.
            try await c.link(f, into: root, Array("hard".utf8))
            #expect(try await c.getattr(f).nlink == 2)
            // 14 RENAME over an existing name, across directories.
            _ = try await c.create(root, Array("victim".utf8))
            try await c.rename(d, Array("f".utf8), to: root, Array("victim".utf8))
            #expect(try await c.lookup(root, Array("victim".utf8)).objectAttributes?.fileid == after.fileid)
            #expect(try await c.getattr(f).fileid == after.fileid, "the handle follows the rename")
            // 16 READDIR and 17 READDIRPLUS list the same names, with the same file ids.
            let listed = try await c.readdir(root, cookie: 0, verifier: .zero, count: 8192)
            #expect(Set(listed.entries.map { String(decoding: $0.name, as: UTF8.self) }) == [".", "..", "d", "hard", "victim"])
            #expect(listed.eof && listed.directoryAttributes?.fileid == rootAttributes.fileid)
            let plus = try await c.readdirplus(root, cookie: 0, verifier: .zero, dirCount: 8192, maxCount: 65536)
            #expect(Set(plus.entries.map { String(decoding: $0.name, as: UTF8.self) }) == [".", "..", "d", "hard", "victim"])
            #expect(plus.eof && plus.entries.allSatisfy { $0.attributes != nil && $0.handle != nil })
            #expect(Dictionary(uniqueKeysWithValues: listed.entries.map { ($0.name, $0.fileid) })
                    == Dictionary(uniqueKeysWithValues: plus.entries.map { ($0.name, $0.fileid) }))
            #expect(try await c.readdir(d, cookie: 0, verifier: .zero, count: 8192).entries.count == 4, ". .. l p")
            await expectStatus(.notdir, "READDIR of a file") { try await c.readdir(f, cookie: 0, verifier: .zero, count: 8192) }
            // 12 REMOVE, 13 RMDIR (a non-empty directory is NFS3ERR_NOTEMPTY).
            var rmdirFull = ByteBuffer()
            rmdirFull.writeNFS3RmdirCall(NFS3RmdirCall(object: NFS3DirOpArgs(directory: root, name: Array("d".utf8))))
            #expect(try await c.status(of: .rmdir, arguments: rmdirFull) == .notempty)
            try await c.remove(d, Array("l".utf8))
            try await c.remove(d, Array("p".utf8))
            try await c.rmdir(root, Array("d".utf8))
            await #expect(throws: (any Error).self) { try await c.getattr(d) }
            // 18 FSSTAT, 19 FSINFO, 20 PATHCONF.
            let space = try await c.fsstat(root)
            #expect(space.totalBytes > 0 && space.freeBytes <= space.totalBytes && space.availableBytes <= space.freeBytes)
            #expect(space.freeFiles <= space.totalFiles && space.availableFiles <= space.freeFiles)
            #expect(space.attributes?.fileid == rootAttributes.fileid)
            let info = try await c.fsinfo(root)
            #expect(info.rtmax == 1 << 20 && info.wtmax == 1 << 20 && info.timeDelta == NFS3Time(seconds: 0, nanoseconds: 1))
            let limits = try await c.pathconf(root)
            #expect(limits.nameMax == 255 && limits.linkMax > 1 && limits.noTrunc && limits.casePreserving)
            #expect(!limits.caseInsensitive)
            // EXCLUSIVE create: a retransmission with the same verifier succeeds, another fails.
            let verifier = NFS3Verifier(0x0102_0304_0506_0708)
            let first = try await c.create(root, Array("x".utf8), how: .exclusive(verifier))
            let again = try await c.create(root, Array("x".utf8), how: .exclusive(verifier))
            #expect(first.object == again.object)
            await #expect(throws: (any Error).self) { try await c.create(root, Array("x".utf8), how: .exclusive(NFS3Verifier(9))) }
            // UMNT takes the mount off DUMP's list.
            try await c.unmount(server.exportPath)
            #expect(try await c.mounts().isEmpty)
            await c.close()
        }
    }

    /// Expects `body` to fail with `status` from the server.
    func expectStatus<T>(_ status: NFS3Status, _ what: String, _ body: () async throws -> T) async {
        do {
            _ = try await body()
            Issue.record("\(what): succeeded, expected \(status.name)")
        } catch {
            #expect((error as? NFS3ClientError)?.status == status, "\(what): \(error)")
        }
    }
}
