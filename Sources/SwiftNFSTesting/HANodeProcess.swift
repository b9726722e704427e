import Foundation
import HA

#if canImport(Glibc)
import Glibc
#endif

/// `swiftnfsd ha campaign` as a child process: one node of the election, whose role changes
/// are read from the JSON lines it prints. For the tests that kill, stop and resume a node.
package final class HANodeProcess: @unchecked Sendable {
    package let name: String
    private let process = Process()
    private let output: URL
    private let errors: URL

    /// Launches the node against `etcd` (URLs, comma-separated) with a lease of `ttl` seconds.
    package init(name: String, etcd: String, ttl: Int, cluster: String = "default") throws {
        self.name = name
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-ha-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        output = dir.appendingPathComponent("stdout")
        errors = dir.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let out = try FileHandle(forWritingTo: output)
        let err = try FileHandle(forWritingTo: errors)
        defer {
            try? out.close()
            try? err.close()
        }
        process.executableURL = try Binaries.swiftnfsd()
        process.arguments = ["ha", "campaign", "--ha-etcd", etcd, "--ha-cluster", cluster, "--ha-name", name,
                             "--ha-address", "127.0.0.1", "--ha-ttl", String(ttl), "--log-level", "info"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        try Tools.launch(process)
    }

    /// The role changes printed so far.
    package var events: [RoleEvent] {
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(RoleEvent.self, from: Data($0.utf8)) }
    }

    /// What the node logged (stderr), for failure messages.
    package var log: String {
        String(((try? String(contentsOf: errors, encoding: .utf8)) ?? "").suffix(4000))
    }

    /// Waits until an event matches, returns it; throws after `timeout`.
    @discardableResult
    package func waitFor(_ what: String, timeout: Duration, where match: (RoleEvent) -> Bool) async throws -> RoleEvent {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = events.first(where: match) { return e }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ToolFailure(message: "node \(name): no \(what) within \(timeout); events:\n"
                              + events.map { "\($0)" }.joined(separator: "\n") + "\nlog:\n\(log)", result: nil)
    }

    package var pid: Int32 { process.processIdentifier }

    package func signal(_ signal: Int32) { Glibc.kill(process.processIdentifier, signal) }

    /// SIGTERM (an active resigns) and waits for the exit; returns the exit status.
    @discardableResult
    package func stop(timeout: Duration = .seconds(15)) async throws -> Int32 {
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGCONT)
            process.terminate()
            _ = try await Tools.waitForExit(process, timeout: timeout)
        }
        return process.terminationStatus
    }

    /// SIGKILL: the lease is left to expire.
    package func kill() async throws {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        _ = try await Tools.waitForExit(process, timeout: .seconds(15))
    }

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: output.deletingLastPathComponent())
    }
}
