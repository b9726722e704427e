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
            let (bench, results) = try await runBench(
                port: server.nfsPort, export: server.exportPath,
                workloads: ["null", "getattr", "write4k-unstable", "read4k"],
                options: ["--duration", "2", "--file-size", "4", "--inflight", "4", "--server-pid", "\(try #require(server.pid))"])
            for r in results {
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

/// Runs the bench binary `swift build` made against a server on 127.0.0.1:`port` (NFS and MOUNT)
/// with `--json`, and checks that it succeeded and that each workload, in order, has operations
/// and no errors. Returns the run and its results for further checks.
func runBench(port: Int, export: String, workloads: [String], options: [String],
              timeout: Duration = .seconds(120)) async throws -> (ToolResult, [BenchResult]) {
    let bench = try await Tools.run(
        try Binaries.swiftnfsd().path,
        ["bench", "--server", "127.0.0.1", "--export", export, "--nfs-port", "\(port)", "--mount-port", "\(port)", "--json"]
            + workloads.flatMap { ["--workload", $0] } + options,
        timeout: timeout)
    #expect(bench.succeeded, "bench exited \(bench.status); stderr:\n\(bench.stderr)")
    let results = try BenchResult.parseLines(bench.stdout)
    #expect(results.map(\.workload) == workloads, "stdout:\n\(bench.stdout)")
    for r in results {
        #expect(r.errors == 0, "\(r.workload): \(r.errorKinds)")
        #expect(r.operations > 0, "\(r.workload) made no operations")
    }
    return (bench, results)
}
