import ArgumentParser
import Bench
import Foundation
import NIOCore
import NIOPosix

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure an NFSv3 server (this one, NFS-Ganesha, knfsd): latency percentiles and throughput.",
        subcommands: [BenchRun.self, BenchWorkloads.self, BenchChart.self, BenchCompare.self],
        defaultSubcommand: BenchRun.self)
}

/// Writes a line to stderr (progress, notes, and the table when stdout carries JSON).
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

struct BenchRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run workloads against a server (the default: `swiftnfsd bench --server ...`).",
        discussion: """
        Works in .swiftnfs-bench/ under the export (removed afterwards, except the cached \
        10,000-entry directory), as AUTH_SYS root: export it without root squashing. Exits 2 when \
        any operation failed. `swiftnfsd bench workloads` lists the workloads.
        """)

    @Option(help: "The server's host name or address.")
    var server: String

    @Option(name: .customLong("export"), help: ArgumentHelp("The export's path, as MOUNT knows it.", valueName: "PATH"))
    var exportPath: String

    @Option(help: "The NFS port (default: ask the portmapper).")
    var nfsPort: Int?

    @Option(help: "The MOUNT port (default: ask the portmapper).")
    var mountPort: Int?

    @Option(help: "The portmapper's port.")
    var portmapPort = 111

    @Option(name: .customLong("workload"), help: ArgumentHelp("A workload to run, or all. Repeatable.", valueName: "NAME"))
    var workloads: [String] = ["all"]

    @Option(name: [.customShort("c"), .long], help: "Connections per run.")
    var connections = 1

    @Option(help: "Client threads the connections run on (default: one per connection, at most one per core).")
    var threads: Int?

    @Option(name: .customLong("server-pid"), help: ArgumentHelp("A server on this host: report the CPU each of its threads used in every run (the busiest first).", valueName: "PID"))
    var serverPID: Int32?

    @Option(help: "Requests in flight per connection. Repeatable: each value is a run of every workload.")
    var inflight: [Int] = [1]

    @Option(help: "Measured seconds per run.")
    var duration = 10.0

    @Option(help: "Unmeasured seconds before each run.")
    var warmup = 0.0

    @Option(name: .customLong("max-ops"), help: "End a run after this many measured operations.")
    var maxOperations: Int?

    @Option(help: "The server's name in results (default HOST:PORT).")
    var label: String?

    @Flag(help: "Print results as JSON lines on stdout (the table goes to stderr).")
    var json = false

    @Option(help: ArgumentHelp("Also write an SVG chart of the latency distributions.", valueName: "FILE"))
    var svg: String?

    @Option(help: "MiB in the file of the 4 KiB random workloads.")
    var fileSize = 64

    @Option(help: "MiB in the file of the 1 MiB sequential workloads.")
    var sequentialFileSize = 128

    @Option(help: "AUTH_SYS uid of every call.")
    var uid: UInt32 = 0

    @Option(help: "AUTH_SYS gid of every call.")
    var gid: UInt32 = 0

    @Option(help: "Seconds before a call counts as failed.")
    var timeout = 30.0

    func makeConfiguration() throws -> BenchConfiguration {
        var c = BenchConfiguration(host: server, exportPath: exportPath)
        c.nfsPort = nfsPort
        c.mountPort = mountPort
        c.portmapPort = portmapPort
        do {
            c.workloads = try Workloads.resolve(workloads)
        } catch {
            throw ValidationError("\(error)")
        }
        c.connections = connections
        c.inflight = inflight
        c.duration = duration
        c.warmup = warmup
        c.maxOperations = maxOperations
        c.label = label
        c.fileSize = fileSize << 20
        c.sequentialFileSize = sequentialFileSize << 20
        c.uid = uid
        c.gid = gid
        c.timeout = timeout
        c.serverPID = serverPID
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        do {
            try c.validate()
        } catch let error as BenchError {
            throw ValidationError(error.detail)
        }
        return c
    }

    func validate() throws {
        _ = try makeConfiguration()
    }

    func run() async throws {
        let configuration = try makeConfiguration()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? min(connections, System.coreCount))
        let json = self.json
        let runner = BenchRunner(configuration: configuration, progress: { printError($0) })
        let results: [BenchResult]
        do {
            results = try await runner.run(group: group) { result in
                guard json, let line = try? result.jsonLine() else { return }
                FileHandle.standardOutput.write(Data((line + "\n").utf8))
            }
        } catch {
            try? await group.shutdownGracefully()
            printError("bench failed: \(error)")
            throw ExitCode(1)
        }
        try? await group.shutdownGracefully()
        let table = BenchTable.results(results)
        if json { printError(table) } else { print(table, terminator: "") }
        if let svg {
            try LatencyChart.svg(results).write(toFile: svg, atomically: true, encoding: .utf8)
        }
        if results.contains(where: { $0.errors > 0 }) { throw ExitCode(2) }
    }
}

struct BenchWorkloads: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workloads", abstract: "List the workloads and what one operation of each is.")

    @Flag(help: "Only the names, one a line.")
    var names = false

    func run() {
        for w in Workloads.all { print(names ? w.name : "\(w.name): \(w.summary)") }
    }
}

/// Reads the result lines of JSON-lines files.
func readResults(_ paths: [String]) throws -> [BenchResult] {
    var all: [BenchResult] = []
    for path in paths {
        do {
            all += try BenchResult.parseLines(String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
    return all
}

struct BenchChart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chart",
        abstract: "Draw the latency distributions of `bench --json` results (one or more servers) as SVG.")

    @Argument(help: "Files of JSON result lines.")
    var files: [String]

    @Option(help: ArgumentHelp("Where to write the chart.", valueName: "FILE"))
    var svg: String

    @Option(help: "The chart's title.")
    var title = "Latency by percentile (lower is better)"

    func run() throws {
        let results = try readResults(files)
        guard !results.isEmpty else { throw ValidationError("no results in \(files.joined(separator: ", "))") }
        try LatencyChart.svg(results, title: title).write(toFile: svg, atomically: true, encoding: .utf8)
    }
}

struct BenchCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Ratios of one server's results to another's, workload by workload (goal: ops/s x1.5, p99 no higher).")

    @Option(help: ArgumentHelp("Results of the server being judged.", valueName: "FILE"))
    var candidate: String

    @Option(help: ArgumentHelp("Results of the server it is judged against.", valueName: "FILE"))
    var baseline: String

    @Flag(help: "Print a markdown table instead of a text table.")
    var markdown = false

    @Flag(help: "Ratios only, without judging them against the goal (e.g. with and without a journal).")
    var noGoal = false

    func run() throws {
        var comparison = BenchComparison(candidate: try readResults([candidate]), baseline: try readResults([baseline]))
        comparison.showsGoal = !noGoal
        print(markdown ? comparison.markdown() : comparison.table(), terminator: "")
        if !markdown && !noGoal {
            print("\(comparison.rowsMeetingGoal) of \(comparison.rows.count) meet the goal (ops ratio >= 1.5, p99 ratio <= 1.0, no errors)")
        }
    }
}
