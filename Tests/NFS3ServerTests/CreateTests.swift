import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// CREATE (RFC 1813 §3.3.8).
@Suite struct CreateTests {
    @Test("GUARDED refuses a name in use; EXCLUSIVE: a retransmission with the same verifier succeeds, another fails")
    func createModes() async throws {
        try await withTestServer { _, c, root in
            let created = try await c.create(root, name("f"))
            #expect(created.object != nil && created.attributes?.type == .regular && created.attributes?.size == 0)
            await expectStatus(.exist, "GUARDED CREATE over a name in use") { try await c.create(root, name("f")) }
            let verifier = NFS3Verifier(0x0102_0304_0506_0708)
            let first = try await c.create(root, name("x"), how: .exclusive(verifier))
            let again = try await c.create(root, name("x"), how: .exclusive(verifier))
            #expect(first.object == again.object)
            await expectStatus(.exist, "EXCLUSIVE CREATE with another verifier") {
                try await c.create(root, name("x"), how: .exclusive(NFS3Verifier(9)))
            }
        }
    }
}
