import Benchmark

extension Benchmark.Configuration {
    /// What every SwiftNFS micro-benchmark measures, and what counts as a regression:
    /// allocations per call are deterministic, so one more per call fails the check (the
    /// tolerance only absorbs the harness's own few allocations per measurement of
    /// `scalingFactor` calls); instructions may move 5%; time and throughput are reported but
    /// never fail a check, because they depend on what else the (shared, two-core) machine is doing.
    public static func swiftNFS(scalingFactor: BenchmarkScalingFactor = .kilo) -> Benchmark.Configuration {
        let mallocTolerance = max(4, scalingFactor.rawValue / 10)
        return .init(
            metrics: [.instructions, .mallocCountTotal, .wallClock, .throughput],
            scalingFactor: scalingFactor,
            maxDuration: .seconds(2),
            thresholds: [
                .mallocCountTotal: BenchmarkThresholds(absolute: [.p50: mallocTolerance, .p90: mallocTolerance]),
                .instructions: BenchmarkThresholds(relative: [.p50: 5, .p90: 5]),
                .wallClock: BenchmarkThresholds(),
                .throughput: BenchmarkThresholds(),
            ])
    }
}
