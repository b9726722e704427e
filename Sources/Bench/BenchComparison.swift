/// One server's results against another's, workload by workload: the ratios the project's
/// goal is stated in (issue 6: ops/s at least 1.5 times the baseline's, p99 no higher).
package struct BenchComparison: Sendable {
    package struct Row: Hashable, Sendable {
        package var workload: String
        package var connections: Int
        package var inflight: Int
        package var candidateOpsPerSecond: Double
        package var baselineOpsPerSecond: Double
        package var candidateP99: Double
        package var baselineP99: Double
        package var errors: UInt64

        package var opsRatio: Double { baselineOpsPerSecond > 0 ? candidateOpsPerSecond / baselineOpsPerSecond : 0 }
        package var p99Ratio: Double { baselineP99 > 0 ? candidateP99 / baselineP99 : 0 }
        package var meetsThroughputGoal: Bool { opsRatio >= BenchComparison.throughputGoal }
        package var meetsLatencyGoal: Bool { p99Ratio <= BenchComparison.latencyGoal }
        /// Both goals, with no failed operation on either side (a fast wrong answer is no answer).
        package var meetsGoal: Bool { meetsThroughputGoal && meetsLatencyGoal && errors == 0 }

        /// "yes", or "no:" and what falls short.
        package var verdict: String {
            if meetsGoal { return "yes" }
            let short = [meetsThroughputGoal ? nil : "ops", meetsLatencyGoal ? nil : "p99", errors == 0 ? nil : "errors"]
            return "no: " + short.compactMap { $0 }.joined(separator: ", ")
        }
    }

    package static let throughputGoal = 1.5
    package static let latencyGoal = 1.0

    package var candidate: String
    package var baseline: String
    package var rows: [Row]
    /// Whether the tables judge each row against the goal (not for comparisons of one server
    /// with itself, such as with and without a journal).
    package var showsGoal = true

    /// Pairs results by workload and concurrency. Several results for one pair (repeated runs)
    /// are averaged. Rows follow the candidate's order.
    package init(candidate: [BenchResult], baseline: [BenchResult]) {
        func grouped(_ results: [BenchResult]) -> (order: [String], byKey: [String: [BenchResult]]) {
            var order: [String] = []
            var byKey: [String: [BenchResult]] = [:]
            for r in results {
                if byKey[r.runKey] == nil { order.append(r.runKey) }
                byKey[r.runKey, default: []].append(r)
            }
            return (order, byKey)
        }
        func mean(_ rs: [BenchResult], _ f: (BenchResult) -> Double) -> Double {
            rs.map(f).reduce(0, +) / Double(rs.count)
        }
        let c = grouped(candidate), b = grouped(baseline)
        self.candidate = candidate.first?.label ?? "candidate"
        self.baseline = baseline.first?.label ?? "baseline"
        self.rows = c.order.compactMap { key in
            guard let cs = c.byKey[key], let bs = b.byKey[key], let first = cs.first else { return nil }
            return Row(workload: first.workload, connections: first.connections, inflight: first.inflight,
                       candidateOpsPerSecond: mean(cs, \.opsPerSecond), baselineOpsPerSecond: mean(bs, \.opsPerSecond),
                       candidateP99: mean(cs, \.latencyMicroseconds.p99), baselineP99: mean(bs, \.latencyMicroseconds.p99),
                       errors: (cs + bs).map(\.errors).reduce(0, +))
        }
    }

    static func ratio(_ v: Double) -> String {
        let hundredths = Int((v * 100).rounded())
        let frac = hundredths % 100
        return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
    }

    func cells(_ r: Row) -> [String] {
        [r.workload, "\(r.connections)x\(r.inflight)",
                BenchTable.number(r.candidateOpsPerSecond), BenchTable.number(r.baselineOpsPerSecond), Self.ratio(r.opsRatio),
                BenchTable.number(r.candidateP99), BenchTable.number(r.baselineP99), Self.ratio(r.p99Ratio)]
            + (showsGoal ? [r.verdict] : []) + ["\(r.errors)"]
    }

    var header: [String] {
        ["workload", "conn x infl", "\(candidate) ops/s", "\(baseline) ops/s", "ops ratio",
         "\(candidate) p99 us", "\(baseline) p99 us", "p99 ratio"] + (showsGoal ? ["goal met"] : []) + ["errors"]
    }

    /// A text table for a terminal.
    package func table() -> String {
        BenchTable.render([header] + rows.map(cells), leftColumns: 2)
    }

    /// A GitHub markdown table.
    package func markdown() -> String {
        let lines = [header] + [header.indices.map { $0 < 2 ? ":--" : "--:" }] + rows.map(cells)
        return lines.map { "| " + $0.joined(separator: " | ") + " |" }.joined(separator: "\n") + "\n"
    }

    /// How many rows meet the goal.
    package var rowsMeetingGoal: Int { rows.filter(\.meetsGoal).count }
}
