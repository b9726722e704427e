import Histogram

/// Latencies in nanoseconds in an HDR histogram: three significant digits from 1 ns to 10 minutes,
/// so a percentile is within 0.1% of the true value at any scale.
package struct LatencyRecorder: Sendable {
    static let highest: UInt64 = 600_000_000_000
    var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highest,
                                      numberOfSignificantValueDigits: .three)

    package init() {}

    package mutating func record(nanoseconds: UInt64) {
        _ = histogram.record(min(max(nanoseconds, 1), Self.highest))
    }

    package mutating func merge(_ other: LatencyRecorder) {
        histogram.add(other.histogram)
    }

    package var count: UInt64 { histogram.totalCount }

    /// The percentiles a result reports, and the curve a chart draws.
    package static let distributionPercentiles: [Double] = [
        0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 96, 97, 98, 98.5, 99, 99.3, 99.5, 99.7,
        99.8, 99.9, 99.95, 99.99, 99.995, 99.999, 100,
    ]

    /// The value at `percentile` in microseconds.
    package func microseconds(atPercentile percentile: Double) -> Double {
        guard count > 0 else { return 0 }
        let ns = percentile >= 100 ? histogram.maxRecorded : histogram.valueAtPercentile(percentile)
        return Double(ns) / 1000
    }

    package func summary() -> LatencySummary {
        func us(_ p: Double) -> Double { Self.rounded(microseconds(atPercentile: p)) }
        return LatencySummary(
            p50: us(50), p90: us(90), p99: us(99), p999: us(99.9), max: us(100),
            mean: Self.rounded(count > 0 ? histogram.mean / 1000 : 0),
            distribution: Self.distributionPercentiles.map { [$0, us($0)] })
    }

    static func rounded(_ v: Double) -> Double { (v * 10).rounded() / 10 }
}

/// Latency percentiles of one run, in microseconds.
package struct LatencySummary: Codable, Hashable, Sendable {
    package var p50: Double
    package var p90: Double
    package var p99: Double
    package var p999: Double
    package var max: Double
    package var mean: Double
    /// [percentile, microseconds] pairs, for charts.
    package var distribution: [[Double]]

    enum CodingKeys: String, CodingKey {
        case p50, p90, p99, p999 = "p99.9", max, mean, distribution
    }
}
