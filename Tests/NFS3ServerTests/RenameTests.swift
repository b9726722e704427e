import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

/// RENAME (RFC 1813 §3.3.14): handles follow the file.
@Suite struct RenameTests {
    @Test("a file moved to another directory keeps its handle and file id; the old name is gone")
    func handleFollowsTheFile() async throws {
        try await withTestServer { _, client, root in
            let file = try #require(try await client.create(root, Array("a".utf8)).object)
            _ = try await client.write(file, offset: 0, data: ByteBuffer(string: "moved"), stable: .fileSync)
            let dir = try #require(try await client.mkdir(root, Array("d".utf8)).object)
            let id = try await client.getattr(file).fileid
            try await client.rename(root, Array("a".utf8), to: dir, Array("b".utf8))
            #expect(try await client.getattr(file).fileid == id)
            #expect(try await client.readAll(file) == Array("moved".utf8))
            #expect(try await client.lookup(dir, Array("b".utf8)).object == file)
            do {
                _ = try await client.lookup(root, Array("a".utf8))
                Issue.record("the old name still resolves")
            } catch let e as NFS3ClientError {
                #expect(e.status == .noent, "\(e)")
            }
        }
    }
}
