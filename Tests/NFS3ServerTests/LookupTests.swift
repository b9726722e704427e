import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// LOOKUP (RFC 1813 §3.3.3).
@Suite struct LookupTests {
    @Test("a name gives the file's handle and attributes; . and .. of the root are the root; a missing name is NOENT")
    func lookup() async throws {
        try await withTestServer { _, c, root in
            let d = try #require(try await c.mkdir(root, name("d")).object)
            let created = try await c.create(d, name("f"))
            let found = try await c.lookup(d, name("f"))
            #expect(found.object == created.object && found.objectAttributes?.fileid == created.attributes?.fileid)
            let rootID = try await c.getattr(root).fileid
            #expect(try await c.lookup(root, name("..")).objectAttributes?.fileid == rootID)
            #expect(try await c.lookup(d, name("..")).objectAttributes?.fileid == rootID)
            await expectStatus(.noent, "LOOKUP of a missing name") { try await c.lookup(root, name("missing")) }
        }
    }
}
