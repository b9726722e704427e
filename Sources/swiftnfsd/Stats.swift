import ArgumentParser
import Daemon
import Foundation

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the running server's handle cache: hits, misses, evictions, invalidations, entries and open descriptors.")

    @Option(help: ArgumentHelp("The state directory the server uses (DURABLE-DIR/state with --durable-dir).", valueName: "DIR"))
    var stateDir = "/var/lib/swiftnfs"

    @Option(help: "Seconds to wait for the running server's answer.")
    var timeout = 5

    func run() throws {
        // The counters of this moment from the running server; the last ones it wrote if none runs.
        let answer = try ControlClient.send("stats", to: ControlClient.socketPath(stateDirectory: stateDir), timeoutSeconds: timeout)
        let running = answer != nil
        guard let s = answer.flatMap(ServerStatistics.init(text:)) ?? ServerStatistics.read(stateDirectory: stateDir) else {
            throw ValidationError(answer.map { "the server answered: \($0)" } ?? "no statistics in \(stateDir) (is a server using this state directory?)")
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
