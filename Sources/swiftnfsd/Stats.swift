import ArgumentParser
import Daemon
import Foundation

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the running server's handle cache: hits, misses, evictions, invalidations, entries and open descriptors.")

    @Option(help: ArgumentHelp("The state directory the server uses (DURABLE-DIR/state with --durable-dir).", valueName: "DIR"))
    var stateDir = "/var/lib/swiftnfs"

    @Option(help: "Seconds to wait for a running server to write its counters.")
    var timeout = 5

    func run() throws {
        guard var s = ServerStatistics.read(stateDirectory: stateDir) else {
            throw ValidationError("no statistics in \(stateDir) (is a server using this state directory?)")
        }
        let running = s.serverIsRunning
        if running {
            // Ask for the counters of this moment rather than of the last periodic write.
            let before = s.updated
            kill(s.pid, SIGUSR2)
            let deadline = Date().addingTimeInterval(Double(timeout))
            while Date() < deadline {
                usleep(50_000)
                if let now = ServerStatistics.read(stateDirectory: stateDir), now.updated > before {
                    s = now
                    break
                }
            }
        }
        let c = s.handleCache
        let lookups = c.hits + c.misses
        let ratio = lookups == 0 ? "-" : String(format: "%.1f%%", 100 * Double(c.hits) / Double(lookups))
        let age = max(0, Int(Date().timeIntervalSince1970 * 1000) - Int(s.updated)) / 1000
        print("server:         " + (running ? "running (pid \(s.pid)), counters \(age) s old" : "not running (last pid \(s.pid))"))
        print("handle cache:   \(c.hits) hits, \(c.misses) misses (\(ratio) hits)")
        print("                \(c.evictions) evictions, \(c.invalidations) invalidations")
        print("                \(c.entries) entries, \(c.descriptors) descriptors open")
    }
}
