import NFS3Client
import SwiftNFSTesting
import Testing

/// NULL (RFC 1813 §3.3.0).
@Suite struct NullTests {
    @Test("NULL answers with nothing") func null() async throws {
        try await withTestServer { _, client, _ in try await client.null() }
    }
}
