import Glibc
import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

/// READ (RFC 1813 §3.3.6).
@Suite struct ReadTests {
    @Test("a read to the end says eof; past the end is empty with eof; a directory is ISDIR")
    func read() async throws {
        try await withTestServer { _, c, root in
            let f = try #require(try await c.create(root, name("f")).object)
            _ = try await c.write(f, offset: 0, data: ByteBuffer(string: "hello, world"), stable: .fileSync)
            let middle = try await c.read(f, offset: 0, count: 5)
            #expect(String(buffer: middle.data) == "hello" && !middle.eof)
            let tail = try await c.read(f, offset: 7, count: 100)
            #expect(String(buffer: tail.data) == "world" && tail.eof)
            let past = try await c.read(f, offset: 1000, count: 10)
            #expect(past.data.readableBytes == 0 && past.eof)
            await expectStatus(.isdir, "READ of a directory") { try await c.read(root, offset: 0, count: 10) }
        }
    }

    /// READ opens the file as the caller (the kernel's checks) and reads through a descriptor
    /// opened for that caller only; it never runs under anyone's identity otherwise.
    @Test("READ of a 0640 file: its owner and its group read it; another user is NFS3ERR_ACCES, also right after they read")
    func readPermissions() async throws {
        try await withTestServer { server, c, root in
            let f = try #require(try await c.create(root, name("shared")).object)
            _ = try await c.write(f, offset: 0, data: ByteBuffer(string: "for the group"), stable: .fileSync)
            chown(server.path("shared"), 1000, 1000)
            chmod(server.path("shared"), 0o640)
            let owner = try await server.client(uid: 1000, gid: 1000)
            let member = try await server.client(uid: 2000, gid: 1000)
            let stranger = try await server.client(uid: 3000, gid: 3000)
            for _ in 0..<3 {
                #expect(String(buffer: try await owner.read(f, offset: 0, count: 100).data) == "for the group")
                #expect(String(buffer: try await member.read(f, offset: 4, count: 100).data) == "the group")
                await expectStatus(.acces, "READ by a stranger") { try await stranger.read(f, offset: 0, count: 100) }
            }
            #expect(try await c.read(f, offset: 0, count: 3).data.readableBytes == 3)
        }
    }
}
