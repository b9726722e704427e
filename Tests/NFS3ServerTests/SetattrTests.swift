import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

/// SETATTR (RFC 1813 §3.3.2), with and without the ctime guard.
@Suite struct SetattrTests {
    @Test("a stale ctime guard is NOT_SYNC; the right one sets mode and size, with WCC data")
    func guarded() async throws {
        try await withTestServer { _, c, root in
            let f = try #require(try await c.create(root, name("f")).object)
            _ = try await c.write(f, offset: 0, data: ByteBuffer(string: "hello, world"), stable: .fileSync)
            let before = try await c.getattr(f)
            await expectStatus(.notSync, "SETATTR with a stale ctime guard") {
                try await c.setattr(f, NFS3SetAttributes(mode: 0o600), guardCtime: NFS3Time(seconds: 1, nanoseconds: 0))
            }
            let wcc = try await c.setattr(f, NFS3SetAttributes(mode: 0o600, size: 5), guardCtime: before.ctime)
            #expect(wcc.before?.size == 12 && wcc.after?.size == 5)
            let after = try await c.getattr(f)
            #expect(after.mode == 0o600 && after.size == 5)
            #expect(try await c.readAll(f) == name("hello"))
        }
    }
}
