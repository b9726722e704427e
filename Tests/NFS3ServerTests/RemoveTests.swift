import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

/// REMOVE and RMDIR (RFC 1813 §3.3.12, §3.3.13).
@Suite struct RemoveTests {
    @Test("RMDIR of a non-empty directory is NOTEMPTY; REMOVE then RMDIR; the handles go stale")
    func removeAndRmdir() async throws {
        try await withTestServer { _, c, root in
            let d = try #require(try await c.mkdir(root, name("d")).object)
            let f = try #require(try await c.create(d, name("f")).object)
            var rmdirFull = ByteBuffer()
            rmdirFull.writeNFS3RmdirCall(NFS3RmdirCall(object: NFS3DirOpArgs(directory: root, name: name("d"))))
            #expect(try await c.status(of: .rmdir, arguments: rmdirFull) == .notempty)
            await expectStatus(.isdir, "REMOVE of a directory") { try await c.remove(root, name("d")) }
            try await c.remove(d, name("f"))
            await expectStatus(.stale, "GETATTR of a removed file") { try await c.getattr(f) }
            try await c.rmdir(root, name("d"))
            await expectStatus(.stale, "GETATTR of a removed directory") { try await c.getattr(d) }
            await expectStatus(.noent, "REMOVE of a missing name") { try await c.remove(root, name("f")) }
        }
    }
}
