import Foundation
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import Testing
import XDR

/// Every one of the 22 NFSv3 procedures through the wire, with the details clients depend on:
/// WCC data, link counts, the exclusive-create verifier, the SETATTR guard, cookies.
@Suite("All NFSv3 procedures")
struct AllProceduresTests {
    @Test("the 22 procedures over TCP against a real directory")
    func everyProcedure() async throws {
        try await ServerProcess.with(portmap: .none) { server in
            let c = try await server.connectAsRoot()
            let root = try await c.mount(server.exportPath)
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
            var stale = ByteBuffer()
            stale.writeNFS3SetattrCall(NFS3SetattrCall(object: f, newAttributes: NFS3SetAttributes(mode: 0o600),
                                                       guardCtime: NFS3Time(seconds: 1, nanoseconds: 0)))
            #expect(try await c.status(of: .setattr, arguments: stale) == .notSync)
            var guarded = ByteBuffer()
            guarded.writeNFS3SetattrCall(NFS3SetattrCall(object: f, newAttributes: NFS3SetAttributes(mode: 0o600, size: 5),
                                                         guardCtime: before.ctime))
            #expect(try await c.status(of: .setattr, arguments: guarded) == .ok)
            let after = try await c.getattr(f)
            #expect(after.mode == 0o600 && after.size == 5)
            // 10 SYMLINK and 5 READLINK.
            var symlink = ByteBuffer()
            symlink.writeNFS3SymlinkCall(NFS3SymlinkCall(where: NFS3DirOpArgs(directory: d, name: Array("l".utf8)),
                                                         attributes: NFS3SetAttributes(), target: Array("f".utf8)))
            #expect(try await c.status(of: .symlink, arguments: symlink) == .ok)
            let l = try await c.lookup(d, Array("l".utf8)).object
            var readlink = ByteBuffer()
            readlink.writeNFS3ReadlinkCall(NFS3ReadlinkCall(symlink: l))
            #expect(try await c.status(of: .readlink, arguments: readlink) == .ok)
            // 11 MKNOD: a FIFO; a type that is no special file is NFS3ERR_BADTYPE.
            var mknod = ByteBuffer()
            mknod.writeNFS3MknodCall(NFS3MknodCall(where: NFS3DirOpArgs(directory: d, name: Array("p".utf8)),
                                                   what: .fifo(NFS3SetAttributes(mode: 0o644))))
            #expect(try await c.status(of: .mknod, arguments: mknod) == .ok)
            #expect(try await c.getattr(try await c.lookup(d, Array("p".utf8)).object).type == .fifo)
            var badType = ByteBuffer()
            badType.writeNFS3MknodCall(NFS3MknodCall(where: NFS3DirOpArgs(directory: d, name: Array("q".utf8)),
                                                     what: .other(.regular)))
            #expect(try await c.status(of: .mknod, arguments: badType) == .badtype)
            // 15 LINK: the link count goes to 2.
            try await c.link(f, into: root, Array("hard".utf8))
            #expect(try await c.getattr(f).nlink == 2)
            // 14 RENAME over an existing name, across directories.
            _ = try await c.create(root, Array("victim".utf8))
            try await c.rename(d, Array("f".utf8), to: root, Array("victim".utf8))
            #expect(try await c.lookup(root, Array("victim".utf8)).objectAttributes?.fileid == after.fileid)
            #expect(try await c.getattr(f).fileid == after.fileid, "the handle follows the rename")
            // 16 READDIR and 17 READDIRPLUS list the same names.
            var readdir = ByteBuffer()
            readdir.writeNFS3ReaddirCall(NFS3ReaddirCall(directory: root, cookie: 0, cookieVerifier: .zero, count: 8192))
            #expect(try await c.status(of: .readdir, arguments: readdir) == .ok)
            let plus = try await c.readdirplus(root, cookie: 0, verifier: .zero, dirCount: 8192, maxCount: 65536)
            #expect(Set(plus.entries.map { String(decoding: $0.name, as: UTF8.self) }) == [".", "..", "d", "hard", "victim"])
            #expect(plus.eof && plus.entries.allSatisfy { $0.attributes != nil && $0.handle != nil })
            // 12 REMOVE, 13 RMDIR (a non-empty directory is NFS3ERR_NOTEMPTY).
            var rmdirFull = ByteBuffer()
            rmdirFull.writeNFS3RmdirCall(NFS3RmdirCall(object: NFS3DirOpArgs(directory: root, name: Array("d".utf8))))
            #expect(try await c.status(of: .rmdir, arguments: rmdirFull) == .notempty)
            try await c.remove(d, Array("l".utf8))
            try await c.remove(d, Array("p".utf8))
            try await c.rmdir(root, Array("d".utf8))
            await #expect(throws: (any Error).self) { try await c.getattr(d) }
            // 18 FSSTAT, 19 FSINFO, 20 PATHCONF.
            var fsstat = ByteBuffer()
            fsstat.writeNFS3FsstatCall(NFS3FsstatCall(fsRoot: root))
            #expect(try await c.status(of: .fsstat, arguments: fsstat) == .ok)
            let info = try await c.fsinfo(root)
            #expect(info.rtmax == 1 << 20 && info.wtmax == 1 << 20 && info.timeDelta == NFS3Time(seconds: 0, nanoseconds: 1))
            var pathconf = ByteBuffer()
            pathconf.writeNFS3PathconfCall(NFS3PathconfCall(object: root))
            #expect(try await c.status(of: .pathconf, arguments: pathconf) == .ok)
            // EXCLUSIVE create: a retransmission with the same verifier succeeds, another fails.
            let verifier = NFS3Verifier(0x0102_0304_0506_0708)
            let first = try await c.create(root, Array("x".utf8), how: .exclusive(verifier))
            let again = try await c.create(root, Array("x".utf8), how: .exclusive(verifier))
            #expect(first.object == again.object)
            await #expect(throws: (any Error).self) { try await c.create(root, Array("x".utf8), how: .exclusive(NFS3Verifier(9))) }
            await c.close()
        }
    }
}
