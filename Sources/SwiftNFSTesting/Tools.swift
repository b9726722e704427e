import Foundation
import HA

#if canImport(Glibc)
import Glibc
#endif

/// The outcome of running an external program to completion.
package struct ToolResult: CustomStringConvertible, Sendable {
    package let command: [String]
    package let status: Int32
    package let timedOut: Bool
    package let stdoutData: Data
    package let stderr: String

    package var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    package var succeeded: Bool { status == 0 && !timedOut }
    package var lines: [Substring] { stdout.split(separator: "\n") }

    package var description: String {
        func clip(_ text: String) -> String {
            text.count <= 2000 ? text : String(text.prefix(2000)) + "… (\(text.count) chars)"
        }
        return """
            $ \(command.joined(separator: " "))
            exit status \(status)\(timedOut ? " (killed after timeout)" : "")
            stdout: \(clip(stdout))
            stderr: \(clip(stderr))
            """
    }

    /// The value of `key=value` on any line of stdout, e.g. `fh=0a1b...`.
    package func value(_ key: String) -> String? {
        for line in lines {
            for field in line.split(separator: " ") where field.hasPrefix(key + "=") {
                return String(field.dropFirst(key.count + 1))
            }
        }
        return nil
    }
}

/// An external program exited non-zero, or printed something other than expected.
package struct ToolFailure: Error, CustomStringConvertible {
    package let message: String
    package let result: ToolResult?

    package init(message: String, result: ToolResult?) {
        self.message = message
        self.result = result
    }

    package var description: String {
        result.map { "\(message)\n\($0)" } ?? message
    }
}

package enum Tools {
    /// Finds `name` on PATH, also trying the sbin directories where
    /// rpcinfo and showmount live, which a non-login PATH may lack.
    package static func path(of name: String) throws -> String {
        if name.contains("/") { return name }
        let pathDirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in pathDirs + ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"] {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ToolFailure(
            message: "'\(name)' is not installed; the end-to-end tests need the Debian packages "
                + "rpcbind, nfs-common, libnfs-utils, libtirpc-dev, pkg-config and a C compiler",
            result: nil)
    }

    /// Runs a program to completion. Output goes through temporary files so
    /// that large outputs cannot block the child on a full pipe.
    package static func run(
        _ name: String, _ arguments: [String], timeout: Duration = .seconds(120)
    ) async throws -> ToolResult {
        let executable = try path(of: name)
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftnfs-tool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout")
        let errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer {
            try? outHandle.close()
            try? errHandle.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = outHandle
        process.standardError = errHandle
        try launch(process)

        let timedOut = try await waitForExit(process, timeout: timeout)
        return ToolResult(
            command: [name] + arguments,
            status: process.terminationStatus,
            timedOut: timedOut,
            stdoutData: (try? Data(contentsOf: outURL)) ?? Data(),
            stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
    }

    /// Runs a program and throws unless it exits 0.
    @discardableResult
    package static func runChecked(
        _ name: String, _ arguments: [String], timeout: Duration = .seconds(120)
    ) async throws -> ToolResult {
        let result = try await run(name, arguments, timeout: timeout)
        guard result.succeeded else {
            throw ToolFailure(message: "\(name) failed", result: result)
        }
        return result
    }

    /// Starts `process` with an empty signal mask. Swift concurrency runs us
    /// on dispatch worker threads, which block most signals, and a spawned
    /// child inherits the spawning thread's mask: swiftnfsd would start with
    /// SIGTERM blocked, unlike under a shell or an init system.
    package static func launch(_ process: Process) throws {
        try ShellCommand.launch(process)
    }

    /// Polls until `process` exits; SIGKILLs it once `timeout` has passed.
    /// Returns whether it had to be killed.
    package static func waitForExit(_ process: Process, timeout: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return true
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}
