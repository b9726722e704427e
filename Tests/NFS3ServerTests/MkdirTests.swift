import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// MKDIR (RFC 1813 §3.3.9).
@Suite struct MkdirTests {
    @Test("a new directory: WCC of the parent, the parent's link count up by one, EXIST for a name in use")
    func mkdir() async throws {
        try await withTestServer { _, c, root in
            let rootAttributes = try await c.getattr(root)
            #expect(rootAttributes.type == .directory && rootAttributes.nlink >= 2)
            let dir = try await c.mkdir(root, name("d"))
            #expect(dir.object != nil && dir.attributes?.type == .directory)
            #expect(dir.directoryWCC.before != nil && dir.directoryWCC.after != nil)
            #expect(try await c.getattr(root).nlink == rootAttributes.nlink + 1)
            await expectStatus(.exist, "MKDIR over a name in use") { try await c.mkdir(root, name("d")) }
        }
    }
}
