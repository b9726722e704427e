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
}
