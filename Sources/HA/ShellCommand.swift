import CNFSShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A command run to its end (or killed at its time limit), its output captured: how the HA
/// parts call `ip`, `arping` and the takeover hook. The command leads a process group of its
/// own, so a time-out kills everything it started. Started with posix_spawn, not Foundation's
/// `Process`, whose start reads past the end of a /proc/self/fd listing and crashed a process
/// holding over a thousand descriptors (a server with that many clients).
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
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-cmd-\(UUID().uuidString)").path
        let sink = open(outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard sink >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: outputPath]) }
        defer { unlink(outputPath) }
        let nothing = open("/dev/null", O_RDONLY | O_CLOEXEC)
        var pid: pid_t = 0
        do {
            defer {
                close(sink)
                if nothing >= 0 { close(nothing) }
            }
            // ETXTBSY: the executable was just written, and a child another thread was starting
            // at that moment still holds the writer's descriptor until its own exec (a hook or
            // stand-in script written by a deployment tool or a test). It passes within moments.
            var attempts = 0
            starting: while true {
                switch spawn(input: nothing, output: sink) {
                case .started(let child):
                    pid = child
                    break starting
                case .failed(ETXTBSY) where attempts < 100:
                    attempts += 1
                    try? await Task.sleep(for: .milliseconds(10))
                case .failed(let code):
                    throw CocoaError(.executableNotLoadable, userInfo: [NSFilePathErrorKey: executable,
                                                                       NSLocalizedDescriptionKey: String(cString: strerror(code))])
                }
            }
        }
        let deadline = started + timeout
        var timedOut = false
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { break }
            if ContinuousClock.now >= deadline {
                timedOut = true
                // The child leads its own process group: the group is everything it started.
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        let bytes = (try? Data(contentsOf: URL(fileURLWithPath: outputPath))) ?? Data()
        let output = String(decoding: bytes.suffix(Self.outputLimit), as: UTF8.self)
        // WIFEXITED and WEXITSTATUS (macros Swift does not import).
        let exited = status & 0x7f == 0
        return Outcome(status: !timedOut && exited ? (status >> 8) & 0xff : nil, timedOut: timedOut, output: output,
                       duration: ContinuousClock.now - started)
    }

    private enum Spawned {
        case started(pid_t)
        case failed(Int32)
    }

    /// Starts the command (`cnfs_spawn`: posix_spawn, every other descriptor closed, an empty
    /// signal mask, a process group of its own); returns its pid or the errno.
    private func spawn(input: Int32, output: Int32) -> Spawned {
        let environment = ProcessInfo.processInfo.environment.merging(self.environment) { $1 }.map { "\($0)=\($1)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let result = cnfs_spawn(executable, argv, envp, input, output, &pid)
        return result == 0 ? .started(pid) : .failed(result)
    }
}
