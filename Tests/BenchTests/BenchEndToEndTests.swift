import Bench
import Foundation
import SwiftNFSTesting
import Testing

/// `swiftnfsd bench` against a real `swiftnfsd serve`, both the binary `swift build` made.
@Suite("swiftnfsd bench against swiftnfsd serve")
struct BenchEndToEndTests {
    @Test("a short run of null, getattr, write4k-unstable and read4k has operations and no errors",
          .timeLimit(.minutes(3)))
    func shortRun() async throws {
        try await ServerProcess.with(portmap: .none) { server in
            let port = "\(server.nfsPort)"
            let bench = try await Tools.run(
                server.binary.path,
                ["bench", "--server", "127.0.0.1", "--export", server.exportPath, "--nfs-port", port,
                 "--mount-port", port, "--workload", "null", "--workload", "getattr",
                 "--workload", "write4k-unstable", "--workload", "read4k", "--duration", "2",
                 "--file-size", "4", "--inflight", "4", "--json", "--server-pid", "\(try #require(server.pid))"])

            #expect(bench.succeeded, "bench exited \(bench.status); stderr:\n\(bench.stderr)")
            let results = try BenchResult.parseLines(bench.stdout)
            #expect(results.map(\.workload) == ["null", "getattr", "write4k-unstable", "read4k"], "stdout:\n\(bench.stdout)")
            for r in results {
                #expect(r.errors == 0, "\(r.workload): \(r.errorKinds)")
                #expect(r.operations > 0, "\(r.workload) made no operations")
                #expect(r.latencyMicroseconds.p50 > 0)
                #expect(r.inflight == 4)
                // The server's threads, with the CPU they used: its event loops answered.
                let threads = try #require(r.serverThreads, "\(r.workload): no server threads")
                #expect(threads.contains { $0.name.hasPrefix("NIO-ELT") }, "\(r.workload): \(threads)")
                #expect((r.serverCPU?.seconds ?? 0) > 0)
            }
            #expect(bench.stderr.contains("server CPU"), "no server CPU line on stderr:\n\(bench.stderr)")
            #expect(results.filter { $0.workload.contains("4k") }.allSatisfy { $0.bytes == $0.operations * 4096 })
            #expect(bench.stderr.contains("ops/s"), "no progress line on stderr:\n\(bench.stderr)")
            // Only the bench directory is left, and it is empty (no 10k directory was asked for).
            let left = try FileManager.default.contentsOfDirectory(atPath: server.exportPath + "/.swiftnfs-bench")
            #expect(left.isEmpty, "left behind: \(left)")
        }
    }
}
