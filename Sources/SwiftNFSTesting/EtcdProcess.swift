import FileStore
import Foundation
import HA

#if canImport(Glibc)
import Glibc
#endif

/// A one-member etcd (Debian's `etcd-server`) on free loopback ports with a temporary data
/// directory, for the HA tests. Use `EtcdProcess.with { etcd in ... }`, which always stops it
/// and removes its directory.
package final class EtcdProcess: @unchecked Sendable {
    /// Whether etcd is installed; the tests that need it are skipped without it, except in CI
    /// (CI set), where its absence is a failure.
    package static var isInstalled: Bool { (try? Tools.path(of: "etcd")) != nil }
    package static var isRequired: Bool { isInstalled || ProcessInfo.processInfo.environment["CI"] != nil }
    package static let notInstalled = "etcd is not installed (Debian package etcd-server; Tests/run installs it)"

    package let root: URL
    package let clientPort: Int
    package let peerPort: Int
    /// The address etcd listens on (loopback unless a test's network says otherwise).
    package let host: String
    private let process = Process()

    /// The client URL, e.g. `http://127.0.0.1:41234`.
    package var url: String { "http://\(host):\(clientPort)" }

    package var log: String {
        (try? String(contentsOf: root.appendingPathComponent("etcd.log"), encoding: .utf8)) ?? "(no log)"
    }

    private init(host: String) throws {
        self.host = host
        root = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-etcd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        clientPort = try Ports.freeTCPAndUDP()
        peerPort = try Ports.freeTCPAndUDP()
    }

    /// Starts etcd, waits until it answers, runs `body`, stops it.
    package static func with<T>(host: String = "127.0.0.1", _ body: (EtcdProcess) async throws -> T) async throws -> T {
        let etcd = try EtcdProcess(host: host)
        defer { etcd.stop() }
        try await etcd.start()
        do {
            return try await body(etcd)
        } catch {
            throw ServerFailure(error: error, log: String(etcd.log.suffix(3000)))
        }
    }

    private func start() async throws {
        let peer = "http://\(host):\(peerPort)"
        guard let etcd = try? Tools.path(of: "etcd") else { throw ToolFailure(message: Self.notInstalled, result: nil) }
        process.executableURL = URL(fileURLWithPath: etcd)
        process.arguments = [
            "--name", "test", "--data-dir", root.appendingPathComponent("data").path,
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "test=\(peer)", "--initial-cluster-state", "new",
            "--log-level", "warn",
        ]
        let logURL = root.appendingPathComponent("etcd.log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        defer { try? log.close() }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try Tools.launch(process)
        let client = try EtcdClient(endpoints: [url], timeout: .seconds(1))
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw ToolFailure(message: "etcd exited while starting:\n\(self.log)", result: nil) }
            if (try? await client.put("/ready", Data())) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ToolFailure(message: "etcd did not answer within 30 s:\n\(self.log)", result: nil)
    }

    /// Sends etcd a signal (SIGSTOP: a member that accepts connections and never answers).
    package func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// SIGKILLs etcd and deletes its data.
    package func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: root)
    }
}
