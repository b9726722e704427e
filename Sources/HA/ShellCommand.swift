import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A command run to its end (or killed at its time limit), its output captured: how the HA
/// parts call `ip`, `arping` and the takeover hook. Foundation's `Process` starts the command
/// as the leader of a process group of its own, so a time-out kills everything it started.
package struct ShellCommand: Sendable {
    package struct Outcome: Sendable, CustomStringConvertible {
        /// The exit status; nil when it was killed at its time limit or by a signal.
        package var status: Int32?
        package var timedOut: Bool
        /// stdout and stderr together, the last 4 KiB.
        package var output: String
        package var duration: Duration

        package var succeeded: Bool { status == 0 }
        package var description: String {
            let how = timedOut ? "killed after its time limit" : status.map { "exit \($0)" } ?? "killed by a signal"
            return "\(how) in \(duration)" + (output.isEmpty ? "" : ": \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    package var executable: String
    package var arguments: [String]
    /// Added to this process's environment.
    package var environment: [String: String] = [:]
    package var timeout: Duration

    package init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.timeout = timeout
    }

    /// Starts `process` with an empty signal mask. Swift's tasks run on threads that block
    /// most signals, and a child inherits the spawning thread's mask: without this, a command
    /// would start with SIGTERM (and SIGALRM, which `arping` waits with) blocked, unlike under a
    /// shell or an init system.
    package static func launch(_ process: Process) throws {
        var empty = sigset_t()
        var saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
    }

    /// The longest output kept.
    static let outputLimit = 4096

    package func run() async throws -> Outcome {
        let started = ContinuousClock.now
        let outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-cmd-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: outputURL.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: outputURL.path])
        }
        defer { try? FileManager.default.removeItem(at: outputURL) }
        let sink = try FileHandle(forWritingTo: outputURL)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = sink
        process.standardError = sink
        do {
            try Self.launch(process)
        } catch {
            try? sink.close()
            throw error
        }
        try? sink.close()
        let deadline = started + timeout
        var timedOut = false
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                timedOut = true
                // The child leads its own process group (Foundation spawns it so): the group is
                // everything it started.
                kill(-process.processIdentifier, SIGKILL)
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                break
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        let bytes = (try? Data(contentsOf: outputURL)) ?? Data()
        let output = String(decoding: bytes.suffix(Self.outputLimit), as: UTF8.self)
        let exited = process.terminationReason == .exit
        return Outcome(status: !timedOut && exited ? process.terminationStatus : nil, timedOut: timedOut, output: output,
                       duration: ContinuousClock.now - started)
    }
}
