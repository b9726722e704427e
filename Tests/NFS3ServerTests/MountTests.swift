import Mount
import NFS3Client
import SwiftNFSTesting
import Testing

/// MOUNT v3 (RFC 1813 appendix I): MNT, EXPORT, DUMP, UMNT.
@Suite struct MountTests {
    @Test("EXPORT lists the export, DUMP this client's mount until UMNT")
    func exportDumpUmnt() async throws {
        try await withTestServer { server, client, _ in
            #expect(try await client.exports().map(\.directory) == [server.exportPath])
            #expect(try await client.mounts() == [MountEntry(hostname: "127.0.0.1", directory: server.exportPath)])
            try await client.unmount(server.exportPath)
            #expect(try await client.mounts().isEmpty)
        }
    }
}
