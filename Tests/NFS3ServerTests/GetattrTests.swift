import Foundation
import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// GETATTR (RFC 1813 §3.3.1) against a server in this process.
@Suite struct GetattrTests {
    @Test("attributes of a file made behind the server's back are the kernel's: type, mode, size, owner")
    func attributesOfAFileOnDisk() async throws {
        try await withTestServer { server, client, root in
            try Data(repeating: 1, count: 12_345).write(to: URL(fileURLWithPath: server.path("plain")))
            chmod(server.path("plain"), 0o640)
            chown(server.path("plain"), 1234, 5678)
            let file = try await client.lookup(root, Array("plain".utf8)).object
            let a = try await client.getattr(file)
            #expect(a.type == .regular && a.mode & 0o7777 == 0o640 && a.size == 12_345)
            #expect(a.uid == 1234 && a.gid == 5678 && a.nlink == 1)
            #expect(try await client.getattr(root).type == .directory)
        }
    }

    @Test("a handle altered in one byte is refused (NFS3ERR_BADHANDLE), and the server goes on")
    func alteredHandle() async throws {
        try await withTestServer { _, client, root in
            var bytes = root.bytes
            bytes[bytes.count - 1] ^= 0x01
            await #expect(throws: NFS3ClientError.self) { _ = try await client.getattr(NFS3FileHandle(bytes)) }
            do {
                _ = try await client.getattr(NFS3FileHandle(bytes))
            } catch let e as NFS3ClientError {
                #expect(e.status == .badhandle, "\(e)")
            }
            _ = try await client.getattr(root)
        }
    }

    /// As knfsd: attributes go to whoever holds a handle (GETATTR runs without the caller's
    /// identity), while what reads or lists still runs as the caller.
    @Test("GETATTR of a file in a directory the caller may not search succeeds; LOOKUP and READ there, and READ of a 0600 file, are NFS3ERR_ACCES")
    func attributesNeedNoSearchPermission() async throws {
        try await withTestServer { server, client, root in
            try FileManager.default.createDirectory(atPath: server.path("private"), withIntermediateDirectories: false)
            try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: server.path("private/file")))
            chmod(server.path("private/file"), 0o600)
            let dir = try await client.lookup(root, Array("private".utf8)).object
            let file = try await client.lookup(dir, Array("file".utf8)).object
            try Data(repeating: 8, count: 10).write(to: URL(fileURLWithPath: server.path("mine")))
            chmod(server.path("mine"), 0o600)
            let mine = try await client.lookup(root, Array("mine".utf8)).object
            chmod(server.path("private"), 0o700)
            let other = try await server.client(uid: 1000, gid: 1000)
            #expect(try await other.getattr(file).size == 100)
            #expect(try await other.getattr(mine).size == 10)
            await expectStatus(.acces, "READ of a file in another user's 0700 directory") { _ = try await other.read(file, offset: 0, count: 100) }
            await expectStatus(.acces, "READ of another user's 0600 file") { _ = try await other.read(mine, offset: 0, count: 10) }
            await expectStatus(.acces, "LOOKUP in another user's 0700 directory") { _ = try await other.lookup(dir, Array("file".utf8)) }
            // Each call on a thread put back as it was: root's calls still may do anything.
            #expect(try await client.read(file, offset: 0, count: 100).data.readableBytes == 100)
        }
    }
}
