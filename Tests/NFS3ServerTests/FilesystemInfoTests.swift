import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

/// FSSTAT, FSINFO and PATHCONF (RFC 1813 §3.3.18-20).
@Suite struct FilesystemInfoTests {
    @Test("FSSTAT: free within total; FSINFO: 1 MiB transfers, nanosecond times; PATHCONF: 255-byte names")
    func limits() async throws {
        try await withTestServer { _, c, root in
            let rootID = try await c.getattr(root).fileid
            let space = try await c.fsstat(root)
            #expect(space.totalBytes > 0 && space.freeBytes <= space.totalBytes && space.availableBytes <= space.freeBytes)
            #expect(space.freeFiles <= space.totalFiles && space.availableFiles <= space.freeFiles)
            #expect(space.attributes?.fileid == rootID)
            let info = try await c.fsinfo(root)
            #expect(info.rtmax == 1 << 20 && info.wtmax == 1 << 20 && info.timeDelta == NFS3Time(seconds: 0, nanoseconds: 1))
            let limits = try await c.pathconf(root)
            #expect(limits.nameMax == 255 && limits.linkMax > 1 && limits.noTrunc && limits.casePreserving && !limits.caseInsensitive)
        }
    }
}
