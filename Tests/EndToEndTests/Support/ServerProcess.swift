import Foundation
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A `swiftnfsd serve` child process exporting a fresh temporary directory
/// on loopback. Use `ServerProcess.with { server in ... }`, which always
/// stops the server (SIGTERM) and removes its files afterwards.
final class ServerProcess: @unchecked Sendable {
    /// Where the embedded portmapper listens.
    enum Portmap {
        case none  // --portmap-port 0
        case ephemeral  // a free loopback port
        case port(Int)  // e.g. 111, for clients that only ask the standard port
    }

    let binary: URL
    let root: URL
    /// The export as clients name it: the absolute path given to --export.
    let exportPath: String
    let stateDir: String
    let nfsPort: Int
    let portmapPort: Int
    private var process: Process?
    private var launches = 0
    /// Further `swiftnfsd serve` arguments (e.g. `--durable-dir`), used at every start.
    var extraArguments: [String] = []
    /// Further environment variables of the server process, used at every start.
    var environment: [String: String] = [:]
    /// An exports file to serve instead of `--export exportPath` (which exports to everyone).
    var exportsFile: String?

    var exportURL: URL { URL(fileURLWithPath: exportPath) }
    /// The running server's process id.
    var pid: Int32? { process?.isRunning == true ? process?.processIdentifier : nil }
    private var logURL: URL { root.appendingPathComponent("swiftnfsd-\(launches).log") }

    init(portmap: Portmap = .ephemeral) throws {
        binary = try Binaries.swiftnfsd()
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftnfs-e2e-\(UUID().uuidString)")
        exportPath = root.appendingPathComponent("export").path
        stateDir = root.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: exportPath, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        nfsPort = try Ports.freeTCPAndUDP()
        switch portmap {
        case .none: portmapPort = 0
        case .ephemeral: portmapPort = try Ports.freeTCPAndUDP()
        case .port(let port): portmapPort = port
        }
    }

    /// Starts a server (set up first by `configure`: arguments, an exports file), runs `body`,
    /// then stops it and deletes its directories.
    static func with<T>(
        portmap: Portmap = .ephemeral, configure: (ServerProcess) throws -> Void = { _ in },
        _ body: (ServerProcess) async throws -> T
    ) async throws -> T {
        let server = try ServerProcess(portmap: portmap)
        defer { server.removeFiles() }
        try configure(server)
        try await server.start()
        let result = try await server.logged { try await body(server) }
        try await server.stop()
        return result
    }

    /// `body`; if it throws, the server's log goes into the test's issues and the server is
    /// stopped before the error goes on.
    func logged<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            Issue.record("swiftnfsd log (last lines):\n\(logTail(lines: 60))")
            try? await stop()
            throw error
        }
    }

    /// Launches the binary (again, after `kill()`, with the same directories
    /// and ports) and waits until NFS, and the portmapper if any, answer
    /// NULL calls on TCP and UDP.
    func start(timeout: Duration = .seconds(60)) async throws {
        precondition(process?.isRunning != true, "server already running")
        launches += 1
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        defer { try? log.close() }

        let process = Process()
        process.executableURL = binary
        process.arguments = [
            "serve"] + (exportsFile.map { ["--exports", $0] } ?? ["--export", exportPath]) + ["--listen", "127.0.0.1",
            "--nfs-port", String(nfsPort), "--portmap-port", String(portmapPort),
            "--state-dir", stateDir,
        ] + extraArguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try Tools.launch(process)
        self.process = process
        try await waitUntilReady(process, timeout: timeout)
    }

    /// SIGTERM, then waits for the exit; SIGKILLs and fails if it takes over 15 s.
    func stop() async throws {
        guard let process, process.isRunning else { return }
        process.terminate()
        if try await Tools.waitForExit(process, timeout: .seconds(15)) {
            throw ToolFailure(message: "swiftnfsd did not exit within 15 s of SIGTERM", result: nil)
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    func kill() async throws {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        _ = try await Tools.waitForExit(process, timeout: .seconds(15))
    }

    /// Waits for a server that is ending by itself (a failpoint) to be gone; true if it had to
    /// be killed after `timeout`. Its connections close a moment before the process is reaped.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(15)) async throws -> Bool {
        guard let process else { return false }
        return try await Tools.waitForExit(process, timeout: timeout)
    }

    /// Empties the exported directory, as a lost instance store leaves it.
    func wipeExport() throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: exportPath) {
            try FileManager.default.removeItem(atPath: exportPath + "/" + name)
        }
    }

    func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? "(no log)"
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .suffix(lines).joined(separator: "\n")
    }

    private func removeFiles() {
        if let process, process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: root)
    }

    private func waitUntilReady(_ process: Process, timeout: Duration) async throws {
        var probes: [(port: Int, program: Int, version: Int)] = [(nfsPort, 100003, 3)]
        if portmapPort != 0 { probes.append((portmapPort, 100000, 2)) }
        let deadline = ContinuousClock.now + timeout
        var lastFailure: ToolResult?
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw ToolFailure(
                    message: "swiftnfsd exited with status \(process.terminationStatus) while starting; "
                        + "log:\n\(logTail())",
                    result: nil)
            }
            lastFailure = nil
            for probe in probes {
                for transport in ["tcp", "udp"] where lastFailure == nil {
                    let result = try await Tools.run(
                        "rpcinfo",
                        ["-a", Ports.universalAddress(probe.port), "-T", transport,
                         String(probe.program), String(probe.version)],
                        timeout: .seconds(10))
                    if !result.succeeded { lastFailure = result }
                }
            }
            if lastFailure == nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Glibc.kill(process.processIdentifier, SIGKILL)
        throw ToolFailure(
            message: "swiftnfsd did not answer within \(timeout); log:\n\(logTail())", result: lastFailure)
    }

    /// `SWIFTNFSD_BIN`, else the swiftnfsd built next to this test binary,
    /// else `<package root>/.build/debug/swiftnfsd`.
}
