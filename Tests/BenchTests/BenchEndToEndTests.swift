import Bench
import Foundation
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `swiftnfsd bench` against a real `swiftnfsd serve`, both the binary `swift build` made.
@Suite("swiftnfsd bench against swiftnfsd serve")
struct BenchEndToEndTests {
    @Test("a short run of null, getattr, write4k-unstable and read4k has operations and no errors",
          .timeLimit(.minutes(3)))
    func shortRun() async throws {
        let binary = try Binaries.swiftnfsd()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-bench-\(UUID().uuidString)")
        let export = root.appendingPathComponent("export").path
        let state = root.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: export, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }

        let server = Process()
        server.executableURL = binary
        server.arguments = ["serve", "--export", export, "--listen", "127.0.0.1", "--nfs-port", "0",
                            "--portmap-port", "0", "--state-dir", state]
        let serverLog = OutputCollector()
        server.standardInput = FileHandle.nullDevice
        server.standardOutput = serverLog.pipe
        server.standardError = serverLog.pipe
        try server.run()
        defer {
            if server.isRunning {
                server.terminate()
                server.waitUntilExit()
            }
        }
        let port = try await Self.servingPort(serverLog, server)

        let bench = Process()
        bench.executableURL = binary
        bench.arguments = ["bench", "--server", "127.0.0.1", "--export", export, "--nfs-port", "\(port)",
                           "--mount-port", "\(port)", "--workload", "null", "--workload", "getattr",
                           "--workload", "write4k-unstable", "--workload", "read4k", "--duration", "2",
                           "--file-size", "4", "--inflight", "4", "--json"]
        let out = OutputCollector(), err = OutputCollector()
        bench.standardInput = FileHandle.nullDevice
        bench.standardOutput = out.pipe
        bench.standardError = err.pipe
        try bench.run()
        while bench.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        bench.waitUntilExit()
        try await Task.sleep(for: .milliseconds(100))  // the last bytes through the pipes

        #expect(bench.terminationStatus == 0, "bench exited \(bench.terminationStatus); stderr:\n\(err.text)")
        let results = try BenchResult.parseLines(out.text)
        #expect(results.map(\.workload) == ["null", "getattr", "write4k-unstable", "read4k"], "stdout:\n\(out.text)")
        for r in results {
            #expect(r.errors == 0, "\(r.workload): \(r.errorKinds)")
            #expect(r.operations > 0, "\(r.workload) made no operations")
            #expect(r.latencyMicroseconds.p50 > 0)
            #expect(r.inflight == 4)
        }
        #expect(results.filter { $0.workload.contains("4k") }.allSatisfy { $0.bytes == $0.operations * 4096 })
        #expect(err.text.contains("ops/s"), "no progress line on stderr:\n\(err.text)")
        // Only the bench directory is left, and it is empty (no 10k directory was asked for).
        let left = try FileManager.default.contentsOfDirectory(atPath: export + "/.swiftnfs-bench")
        #expect(left.isEmpty, "left behind: \(left)")
    }

    /// Waits for the "serving" line and takes the port from its `nfs.port=N`.
    static func servingPort(_ log: OutputCollector, _ server: Process) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let range = log.text.range(of: #"nfs\.port=([0-9]+)"#, options: .regularExpression),
               let port = Int(log.text[range].dropFirst("nfs.port=".count)) {
                return port
            }
            guard server.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError(.setup, "swiftnfsd serve did not report its port; log:\n\(log.text)")
    }
}

/// Collects what a child process writes to a pipe.
final class OutputCollector: @unchecked Sendable {
    let pipe = Pipe()
    private let lock = NSLock()
    private var data = Data()

    init() {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let chunk = handle.availableData
            guard let self, !chunk.isEmpty else { return }
            self.lock.withLock { self.data.append(chunk) }
        }
    }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
