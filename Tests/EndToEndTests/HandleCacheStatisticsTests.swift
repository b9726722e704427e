import Daemon
import Foundation
import NFS3Client
import SwiftNFSTesting
import Testing

/// The handle cache's counters as an operator sees them: `swiftnfsd stats` against a running
/// server, before and after a client works on a file.
@Suite("Handle cache statistics")
struct HandleCacheStatisticsTests {
    @Test("GETATTRs of one file show as hits in swiftnfsd stats")
    func getattrsAreHits() async throws {
        try await ServerProcess.with(portmap: .none) { server in
            let c = try await server.nfsClient(machine: "stats")
            let root = try await c.mount(server.exportPath)
            let d = try #require(try await c.mkdir(root, Array("d".utf8)).object)
            let f = try #require(try await c.create(d, Array("f".utf8)).object)
            let before = try await stats(server).handleCache
            for _ in 0..<20 { _ = try await c.getattr(f) }
            let after = try await stats(server).handleCache
            // The first may be the miss that puts the file in the cache.
            #expect(after.hits - before.hits >= 19, "before: \(before), after: \(after)")
            #expect(after.hits + after.misses - before.hits - before.misses >= 20)
            // The directory's descriptor, the parent of the file's entry.
            #expect(after.entries >= 1 && after.descriptors >= 1)
            try await c.remove(d, Array("f".utf8))
            #expect(try await stats(server).handleCache.invalidations > after.invalidations)
            await c.close()
        }
    }

    /// Runs `swiftnfsd stats` and reads the counters it printed, checking they match the file
    /// the server wrote for it.
    func stats(_ server: ServerProcess) async throws -> ServerStatistics {
        let result = try await Tools.runChecked(server.binary.path, ["stats", "--state-dir", server.stateDir])
        #expect(result.stdout.contains("running (pid"), "\(result)")
        let written = try #require(ServerStatistics.read(stateDirectory: server.stateDir))
        let c = written.handleCache
        #expect(result.stdout.contains("\(c.hits) hits, \(c.misses) misses"), "\(result)")
        return written
    }
}
