import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

/// WRITE and COMMIT (RFC 1813 §3.3.7, §3.3.21), without and with a durable directory.
@Suite struct WriteTests {
    @Test("UNSTABLE writes then COMMIT: one write verifier, the data read back, the size grown", arguments: [false, true])
    func unstableThenCommit(durable: Bool) async throws {
        var options = TestServerOptions()
        options.durable = durable
        try await withTestServer(options) { _, client, root in
            let file = try #require(try await client.create(root, Array("data".utf8)).object)
            var verifiers: Set<NFS3Verifier> = []
            for i in 0..<8 {
                let w = try await client.write(file, offset: UInt64(i * 4096), data: ByteBuffer(repeating: UInt8(i), count: 4096),
                                               stable: .unstable)
                #expect(w.count == 4096 && w.committed == .unstable)
                verifiers.insert(w.verifier)
            }
            let commit = try await client.commit(file, offset: 0, count: 0)
            verifiers.insert(commit.verifier)
            #expect(verifiers.count == 1, "the write verifier changed without a restart")
            let back = try await client.readAll(file)
            #expect(back.count == 8 * 4096 && (0..<8).allSatisfy { i in back[i * 4096..<(i + 1) * 4096].allSatisfy { $0 == UInt8(i) } })
            #expect(try await client.getattr(file).size == 8 * 4096)
        }
    }

    @Test("FILE_SYNC is answered FILE_SYNC; a write to a directory is NFS3ERR_ISDIR")
    func stableAndRefused() async throws {
        try await withTestServer { _, client, root in
            let file = try #require(try await client.create(root, Array("f".utf8)).object)
            let w = try await client.write(file, offset: 0, data: ByteBuffer(string: "hello"), stable: .fileSync)
            #expect(w.committed == .fileSync && w.count == 5)
            do {
                _ = try await client.write(root, offset: 0, data: ByteBuffer(string: "x"), stable: .unstable)
                Issue.record("a WRITE to a directory succeeded")
            } catch let e as NFS3ClientError {
                #expect(e.status == .isdir || e.status == .inval, "\(e)")
            }
        }
    }
}
