import Foundation
import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// READDIRPLUS (RFC 1813 §3.3.17): a directory listed in many small pages.
@Suite struct ReaddirplusTests {
    @Test("300 entries in small pages: every name once, with handles and attributes, then eof")
    func pages() async throws {
        try await withTestServer { server, client, root in
            let names = (0..<300).map { "entry-\($0)" }
            for n in names { FileManager.default.createFile(atPath: server.path(n), contents: Data(n.utf8)) }
            var seen: [String] = []
            var cookie: UInt64 = 0
            var verifier = NFS3Verifier.zero
            var pages = 0
            while true {
                let page = try await client.readdirplus(root, cookie: cookie, verifier: verifier, dirCount: 1024, maxCount: 4096)
                pages += 1
                for e in page.entries {
                    let name = String(decoding: e.name, as: UTF8.self)
                    if name != "." && name != ".." {
                        seen.append(name)
                        #expect(e.handle != nil && e.attributes?.size == UInt64(name.utf8.count), "\(name)")
                    }
                    cookie = e.cookie
                }
                verifier = page.cookieVerifier
                if page.eof { break }
                #expect(!page.entries.isEmpty, "a page with no entries and no eof")
                if pages > 1000 { Issue.record("no eof after 1000 pages"); break }
            }
            #expect(pages > 1, "a 300-entry listing fit one 4 KiB page")
            #expect(seen.sorted() == names.sorted(), "names missing or repeated")
        }
    }
}
