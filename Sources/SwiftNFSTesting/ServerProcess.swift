import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A `swiftnfsd serve` child process exporting a fresh temporary directory on loopback, for
/// the tests that need the server in a process of its own (crashes, signals, the CLI).
/// Use `ServerProcess.with { server in ... }`, which always stops the server (SIGTERM) and
/// removes its files afterwards; a test that builds one itself calls `removeFiles()` in a defer.
package final class ServerProcess: @unchecked Sendable {
    /// Where the embedded portmapper listens.
    package enum Portmap {
        case none  // --portmap-port 0
        case ephemeral  // a free loopback port
        case port(Int)  // e.g. 111, for clients that only ask the standard port
    }

    package let binary: URL
    package let root: URL
    /// The export as clients name it: the absolute path given to --export.
    package let exportPath: String
    package let stateDir: String
    package let nfsPort: Int
    package let portmapPort: Int
    private var process: Process?
    private var launches = 0
    /// Further `swiftnfsd serve` arguments (e.g. `--durable-dir`), used at every start.
    package var extraArguments: [String] = []
    /// Further environment variables of the server process, used at every start.
    package var environment: [String: String] = [:]
    /// An exports file to serve instead of `--export exportPath` (which exports to everyone).
    package var exportsFile: String?

    package var exportURL: URL { URL(fileURLWithPath: exportPath) }
    /// The running server's process id.
    package var pid: Int32? { process?.isRunning == true ? process?.processIdentifier : nil }

    /// The server's resident memory (VmRSS) in KiB, 0 when it is not running.
    package var residentKiB: Int { pid.flatMap(Self.residentKiB(pid:)) ?? 0 }

    /// VmRSS of process `pid` in KiB, nil when it cannot be read.
    package static func residentKiB(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kib = Int(fields[1]) { return kib }
        }
        return nil
    }
    /// The exit status of the last launch, once it has exited.
    package var exitStatus: Int32? { process.flatMap { $0.isRunning ? nil : $0.terminationStatus } }
    private var logURL: URL { root.appendingPathComponent("swiftnfsd-\(launches).log") }

    /// `nfsPort`: a port to serve NFS on instead of a free one (e.g. one the test holds).
    package init(portmap: Portmap = .ephemeral, nfsPort: Int? = nil) throws {
        binary = try Binaries.swiftnfsd()
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftnfs-e2e-\(UUID().uuidString)")
        exportPath = root.appendingPathComponent("export").path
        stateDir = root.appendingPathComponent("state").path
        try FileManager.default.createDirectory(atPath: exportPath, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        self.nfsPort = try nfsPort ?? Ports.freeTCPAndUDP()
        switch portmap {
        case .none: portmapPort = 0
        case .ephemeral: portmapPort = try Ports.freeTCPAndUDP()
        case .port(let port): portmapPort = port
        }
    }

    /// Starts a server (set up first by `configure`: arguments, an exports file), runs `body`,
    /// then stops it and deletes its directories.
    package static func with<T>(
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

    /// `body`; if it throws, the server is stopped and the error goes on as a `ServerFailure`
    /// that carries the server's log, so a failed test shows it.
    package func logged<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as ServerFailure {
            try? await stop()
            throw failure
        } catch {
            try? await stop()
            throw ServerFailure(error: error, log: logTail(lines: 60))
        }
    }

    /// Launches the binary (again, after `kill()`, with the same directories
    /// and ports) and waits until NFS, and the portmapper if any, answer
    /// NULL calls on TCP and UDP.
    package func start(timeout: Duration = .seconds(60)) async throws {
        let process = try launch()
        try await waitUntilReady(process, timeout: timeout)
    }

    /// Launches the binary and waits for it to exit by itself, as a server that refuses to
    /// start does; returns its exit status (its words are in `log`). SIGKILLs it and throws
    /// if it still runs after `timeout`.
    package func runUntilExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        let process = try launch()
        if try await Tools.waitForExit(process, timeout: timeout) {
            throw ToolFailure(message: "swiftnfsd still ran after \(timeout); log:\n\(logTail())", result: nil)
        }
        return process.terminationStatus
    }

    /// SIGTERM, then waits for the exit; SIGKILLs and fails if it takes over 15 s.
    package func stop() async throws {
        guard let process, process.isRunning else { return }
        process.terminate()
        if try await Tools.waitForExit(process, timeout: .seconds(15)) {
            throw ToolFailure(message: "swiftnfsd did not exit within 15 s of SIGTERM", result: nil)
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    package func kill() async throws {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        _ = try await Tools.waitForExit(process, timeout: .seconds(15))
    }

    /// Waits for a server that is ending by itself (a failpoint) to be gone; true if it had to
    /// be killed after `timeout`. Its connections close a moment before the process is reaped.
    @discardableResult
    package func waitForExit(timeout: Duration = .seconds(15)) async throws -> Bool {
        guard let process else { return false }
        return try await Tools.waitForExit(process, timeout: timeout)
    }

    /// Empties the exported directory, as a lost instance store leaves it.
    package func wipeExport() throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: exportPath) {
            try FileManager.default.removeItem(atPath: exportPath + "/" + name)
        }
    }

    /// What the last launch wrote to stdout and stderr.
    package var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "(no log)" }

    package func logTail(lines: Int = 40) -> String {
        log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// SIGKILLs a server that still runs and deletes its directories.
    package func removeFiles() {
        if let process, process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: root)
    }

    /// Starts `swiftnfsd serve` with its output going to a new log file.
    private func launch() throws -> Process {
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
        return process
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
}

/// What a test's work with a `ServerProcess` threw, with the server's log at that moment.
package struct ServerFailure: Error, CustomStringConvertible {
    package let error: any Error
    package let log: String
    package var description: String { "\(error)\nswiftnfsd log (last lines):\n\(log)" }
}
