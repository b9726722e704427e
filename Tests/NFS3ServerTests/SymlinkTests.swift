import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// SYMLINK and READLINK (RFC 1813 §3.3.10, §3.3.5).
@Suite struct SymlinkTests {
    @Test("the target comes back as it was given, even one that points nowhere; READLINK of a file is INVAL")
    func symlinkAndReadlink() async throws {
        try await withTestServer { _, c, root in
            let f = try #require(try await c.create(root, name("f")).object)
            let symlink = try await c.symlink(root, name("l"), to: name("f"))
            let l = try #require(symlink.object)
            #expect(symlink.attributes?.type == .link && symlink.attributes?.size == 1)
            let readlink = try await c.readlink(l)
            #expect(readlink.path == name("f") && readlink.attributes?.fileid == symlink.attributes?.fileid)
            let dangling = try #require(try await c.symlink(root, name("dangling"), to: name("../nowhere/x")).object)
            #expect(try await c.readlink(dangling).path == name("../nowhere/x"))
            await expectStatus(.inval, "READLINK of a regular file") { try await c.readlink(f) }
        }
    }
}
