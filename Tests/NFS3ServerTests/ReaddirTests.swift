import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// READDIR (RFC 1813 §3.3.16), against READDIRPLUS.
@Suite struct ReaddirTests {
    @Test("READDIR and READDIRPLUS list the same names with the same file ids; a file is NOTDIR")
    func readdir() async throws {
        try await withTestServer { _, c, root in
            _ = try await c.mkdir(root, name("d"))
            let f = try #require(try await c.create(root, name("f")).object)
            _ = try await c.symlink(root, name("l"), to: name("f"))
            let rootID = try await c.getattr(root).fileid
            let listed = try await c.readdir(root, cookie: 0, verifier: .zero, count: 8192)
            #expect(Set(listed.entries.map { String(decoding: $0.name, as: UTF8.self) }) == [".", "..", "d", "f", "l"])
            #expect(listed.eof && listed.directoryAttributes?.fileid == rootID)
            let plus = try await c.readdirplus(root, cookie: 0, verifier: .zero, dirCount: 8192, maxCount: 65536)
            #expect(Dictionary(uniqueKeysWithValues: listed.entries.map { ($0.name, $0.fileid) })
                    == Dictionary(uniqueKeysWithValues: plus.entries.map { ($0.name, $0.fileid) }))
            await expectStatus(.notdir, "READDIR of a file") { try await c.readdir(f, cookie: 0, verifier: .zero, count: 8192) }
        }
    }
}
