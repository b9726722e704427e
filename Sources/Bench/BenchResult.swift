#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The outcome of one workload at one concurrency against one server: what a JSON line holds.
package struct BenchResult: Codable, Hashable, Sendable {
    /// Always "result": tells result lines from any other line a script may meet.
    package var type = "result"
    /// The server, as `--label` named it.
    package var label: String
    package var workload: String
    package var connections: Int
    package var inflight: Int
    /// Measured seconds (from the end of the warm-up to the last reply).
    package var seconds: Double
    package var operations: UInt64
    package var errors: UInt64
    /// Failures by kind ("READ data mismatch", "GETATTR NFS3ERR_STALE", ...).
    package var errorKinds: [String: UInt64]
    package var bytes: UInt64
    package var opsPerSecond: Double
    /// Megabytes (10^6 bytes) of file data per second.
    package var megabytesPerSecond: Double
    package var latencyMicroseconds: LatencySummary
    /// The server's threads and the CPU each used in the measured time, busiest first (with
    /// `--server-pid`, for a server on this host).
    package var serverThreads: [ThreadCPU]?

    package init(label: String, workload: String, connections: Int, inflight: Int, seconds: Double, operations: UInt64,
                errors: UInt64, errorKinds: [String: UInt64], bytes: UInt64, latency: LatencySummary) {
        self.label = label; self.workload = workload; self.connections = connections; self.inflight = inflight
        self.seconds = LatencyRecorder.rounded(seconds * 100) / 100
        self.operations = operations; self.errors = errors; self.errorKinds = errorKinds; self.bytes = bytes
        self.opsPerSecond = LatencyRecorder.rounded(seconds > 0 ? Double(operations) / seconds : 0)
        self.megabytesPerSecond = LatencyRecorder.rounded(seconds > 0 ? Double(bytes) / seconds / 1e6 : 0)
        self.latencyMicroseconds = latency
    }

    enum CodingKeys: String, CodingKey {
        case type, label, workload, connections, inflight, seconds, operations, errors
        case errorKinds = "error_kinds", bytes
        case opsPerSecond = "ops_per_s", megabytesPerSecond = "mb_per_s", latencyMicroseconds = "latency_us"
        case serverThreads = "server_threads"
    }

    /// The server's CPU seconds over all its threads, and the busiest thread's share of them.
    package var serverCPU: (seconds: Double, busiestShare: Double)? {
        guard let threads = serverThreads, !threads.isEmpty else { return nil }
        let total = threads.reduce(0) { $0 + $1.cpuSeconds }
        return (total, total > 0 ? threads[0].cpuSeconds / total : 0)
    }

    /// What workload and concurrency the result is for; results with the same key compare.
    package var runKey: String { "\(workload) \(connections)x\(inflight)" }

    /// One line of JSON, keys sorted.
    package func jsonLine() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Every result line of a JSON-lines text; blank lines and lines of another `type` are skipped.
    package static func parseLines(_ text: String) throws -> [BenchResult] {
        let decoder = JSONDecoder()
        var out: [BenchResult] = []
        for line in text.split(whereSeparator: \.isNewline) where !line.allSatisfy(\.isWhitespace) {
            struct Kind: Decodable { var type: String? }
            let data = Data(line.utf8)
            guard (try? decoder.decode(Kind.self, from: data))?.type == "result" else { continue }
            out.append(try decoder.decode(BenchResult.self, from: data))
        }
        return out
    }
}

/// Fixed-width text tables for people.
package enum BenchTable {
    static func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - s.count))
        return left ? s + fill : fill + s
    }

    static func number(_ v: Double) -> String {
        if v >= 100 { return String(Int(v.rounded())) }
        let tenths = Int((v * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }

    static func render(_ rows: [[String]], leftColumns: Int) -> String {
        guard let header = rows.first else { return "" }
        let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.indices.map { c in pad(row[c], widths[c], left: c < leftColumns) }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// The results, one row each, latencies in microseconds.
    package static func results(_ results: [BenchResult]) -> String {
        var rows = [["server", "workload", "conn", "infl", "ops", "errors", "ops/s", "MB/s",
                     "p50 us", "p90 us", "p99 us", "p99.9 us", "max us"]]
        for r in results {
            let l = r.latencyMicroseconds
            rows.append([r.label, r.workload, "\(r.connections)", "\(r.inflight)", "\(r.operations)", "\(r.errors)",
                         number(r.opsPerSecond), number(r.megabytesPerSecond), number(l.p50), number(l.p90),
                         number(l.p99), number(l.p999), number(l.max)])
        }
        var text = render(rows, leftColumns: 2)
        for r in results where r.errors > 0 {
            let kinds = r.errorKinds.sorted { $0.value > $1.value }.map { "\($0.key) x\($0.value)" }
            text += "errors in \(r.label) \(r.runKey): \(kinds.joined(separator: ", "))\n"
        }
        return text
    }
}
