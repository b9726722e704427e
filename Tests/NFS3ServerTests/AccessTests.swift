import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// ACCESS (RFC 1813 §3.3.4).
@Suite struct AccessTests {
    @Test("the owner gets READ and MODIFY on a 0644 file; another user only READ")
    func access() async throws {
        try await withTestServer { server, c, root in
            let f = try #require(try await c.create(root, name("f"), how: .guarded(NFS3SetAttributes(mode: 0o644))).object)
            let asked = NFS3AccessMask.read | NFS3AccessMask.modify
            #expect(try await c.access(f, mask: asked).access == asked)
            let other = try await server.client(uid: 4321, gid: 4321)
            _ = try await other.mount(server.exportPath)
            #expect(try await other.access(f, mask: asked).access == NFS3AccessMask.read)
            await other.close()
        }
    }
}
