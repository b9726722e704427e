import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// MKNOD (RFC 1813 §3.3.11).
@Suite struct MknodTests {
    @Test("a FIFO with the mode asked for; a regular file is BADTYPE; a name in use is EXIST")
    func mknod() async throws {
        try await withTestServer { _, c, root in
            let fifo = try await c.mknod(root, name("p"), .fifo(NFS3SetAttributes(mode: 0o640)))
            #expect(fifo.attributes?.type == .fifo && fifo.attributes?.mode == 0o640 && fifo.directoryWCC.after != nil)
            #expect(try await c.getattr(try await c.lookup(root, name("p")).object).type == .fifo)
            await expectStatus(.badtype, "MKNOD of a regular file") { try await c.mknod(root, name("q"), .other(.regular)) }
            await expectStatus(.exist, "MKNOD over a name in use") { try await c.mknod(root, name("p"), .fifo(NFS3SetAttributes())) }
        }
    }
}
