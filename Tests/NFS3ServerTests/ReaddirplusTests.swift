import Foundation
import NFS3
import NIOCore
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

    /// Every entry of `directory` by name, read in pages of 4 KiB (several for 50 entries).
    static func listing(_ client: NFS3Client, _ directory: NFS3FileHandle) async throws -> [String: NFS3ReaddirplusEntry] {
        var out: [String: NFS3ReaddirplusEntry] = [:]
        var cookie: UInt64 = 0
        var verifier = NFS3Verifier.zero
        for _ in 0..<1000 {
            let page = try await client.readdirplus(directory, cookie: cookie, verifier: verifier, dirCount: 1024, maxCount: 4096)
            for e in page.entries {
                let name = String(decoding: e.name, as: UTF8.self)
                #expect(out[name] == nil, "\(name) listed twice")
                out[name] = e
                cookie = e.cookie
            }
            verifier = page.cookieVerifier
            if page.eof { return out }
        }
        Issue.record("no eof after 1000 pages")
        return out
    }

    @Test("a directory listed again shows at once every change made through the server: WRITE, SETATTR, CREATE, REMOVE, RENAME")
    func listedAgainAfterChanges() async throws {
        try await withTestServer { server, client, root in
            for i in 0..<50 { FileManager.default.createFile(atPath: server.path("f-\(i)"), contents: Data()) }
            // Listed twice: the second listing may be answered from what the first read.
            _ = try await Self.listing(client, root)
            var listed = try await Self.listing(client, root)
            #expect(listed.count == 52 && listed["f-5"]?.attributes?.size == 0)
            let f5 = try #require(listed["f-5"]?.handle)
            _ = try await client.write(f5, offset: 0, data: ByteBuffer(repeating: 1, count: 777), stable: .unstable)
            listed = try await Self.listing(client, root)
            #expect(listed["f-5"]?.attributes?.size == 777, "a WRITE's size")

            let f6 = try #require(listed["f-6"]?.handle)
            _ = try await client.setattr(f6, NFS3SetAttributes(mode: 0o600), guardCtime: nil)
            listed = try await Self.listing(client, root)
            #expect(listed["f-6"]?.attributes?.mode == 0o600, "a SETATTR's mode")

            _ = try await client.create(root, Array("new".utf8))
            listed = try await Self.listing(client, root)
            #expect(listed["new"] != nil && listed.count == 53, "a CREATE")

            try await client.remove(root, Array("f-7".utf8))
            listed = try await Self.listing(client, root)
            #expect(listed["f-7"] == nil && listed.count == 52, "a REMOVE")

            try await client.rename(root, Array("f-8".utf8), to: root, Array("f-8b".utf8))
            listed = try await Self.listing(client, root)
            #expect(listed["f-8"] == nil && listed["f-8b"] != nil && listed.count == 52, "a RENAME")
        }
    }

    @Test("a directory changed behind the server's back is listed as it is at once")
    func listedAgainAfterLocalChanges() async throws {
        try await withTestServer { server, client, root in
            for i in 0..<50 { FileManager.default.createFile(atPath: server.path("f-\(i)"), contents: Data()) }
            _ = try await Self.listing(client, root)
            _ = try await Self.listing(client, root)
            FileManager.default.createFile(atPath: server.path("local"), contents: Data("x".utf8))
            try FileManager.default.removeItem(atPath: server.path("f-3"))
            let listed = try await Self.listing(client, root)
            #expect(listed["local"]?.attributes?.size == 1 && listed["f-3"] == nil && listed.count == 52)
        }
    }

    @Test("a listing is kept: an entry's mode changed behind the server's back shows after at most two seconds, not at once")
    func listingIsKept() async throws {
        try await withTestServer { server, client, root in
            for i in 0..<50 { FileManager.default.createFile(atPath: server.path("f-\(i)"), contents: Data()) }
            chmod(server.path("f-9"), 0o644)
            // The first listing is read and kept; within its two seconds the next one comes from
            // it (a chmod of a file does not touch its directory). A slow machine gets more tries.
            var kept = false
            let f0 = try #require(try await client.lookup(root, Array("f-0".utf8)).object)
            for _ in 0..<5 where !kept {
                chmod(server.path("f-9"), 0o644)
                // A change through the server drops what an earlier try kept: the listing
                // below is read afresh, after `started`.
                _ = try await client.setattr(f0, NFS3SetAttributes(mode: 0o644))
                let started = ContinuousClock.now
                _ = try await Self.listing(client, root)
                chmod(server.path("f-9"), 0o640)
                let listed = try await Self.listing(client, root)
                guard ContinuousClock.now - started < .milliseconds(1500) else { continue }
                kept = listed["f-9"]?.attributes?.mode == 0o644
                #expect(kept, "the second listing was read again: mode \(String(listed["f-9"]?.attributes?.mode ?? 0, radix: 8))")
                // GETATTR always asks the file system.
                let f9 = try #require(listed["f-9"]?.handle)
                #expect(try await client.getattr(f9).mode == 0o640)
            }
            #expect(kept)
            try await Task.sleep(for: .milliseconds(2100))
            let listed = try await Self.listing(client, root)
            #expect(listed["f-9"]?.attributes?.mode == 0o640, "still the kept mode after two seconds")
        }
    }

    @Test("a kept listing is given only to a caller who may read the directory")
    func keptListingNeedsPermission() async throws {
        try await withTestServer { server, client, root in
            try FileManager.default.createDirectory(atPath: server.path("private"), withIntermediateDirectories: true)
            chmod(server.path("private"), 0o700)
            for i in 0..<20 { FileManager.default.createFile(atPath: server.path("private/f-\(i)"), contents: Data()) }
            let dir = try #require(try await client.lookup(root, Array("private".utf8)).object)
            _ = try await Self.listing(client, dir)
            #expect(try await Self.listing(client, dir).count == 22)
            let other = try await server.client(uid: 1000, gid: 1000)
            await expectStatus(.acces, "READDIRPLUS of a 0700 directory by another user") {
                try await other.readdirplus(dir, cookie: 0, verifier: .zero, dirCount: 1024, maxCount: 4096)
            }
        }
    }
}
