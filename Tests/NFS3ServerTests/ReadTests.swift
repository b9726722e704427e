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
}
