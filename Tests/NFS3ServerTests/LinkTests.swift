import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// LINK (RFC 1813 §3.3.15).
@Suite struct LinkTests {
    @Test("a second name: the link count goes to 2 and both names give the same file; a directory is refused")
    func link() async throws {
        try await withTestServer { _, c, root in
            let d = try #require(try await c.mkdir(root, name("d")).object)
            let f = try #require(try await c.create(d, name("f")).object)
            try await c.link(f, into: root, name("hard"))
            #expect(try await c.getattr(f).nlink == 2)
            #expect(try await c.lookup(root, name("hard")).object == f)
            do {
                try await c.link(d, into: root, name("dirlink"))
                Issue.record("LINK of a directory succeeded")
            } catch let e as NFS3ClientError {
                #expect([NFS3Status.isdir, .perm, .inval, .acces].contains(e.status), "\(e)")
            }
        }
    }
}
