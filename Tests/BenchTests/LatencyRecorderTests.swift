import Bench
import Testing

@Suite("Latency recorder")
struct LatencyRecorderTests {
    @Test("percentiles of 1...10,000 µs are within the histogram's 0.1% precision")
    func percentilesOfUniformValues() {
        var recorder = LatencyRecorder()
        for us in 1...10_000 { recorder.record(nanoseconds: UInt64(us) * 1000) }
        let summary = recorder.summary()
        #expect(recorder.count == 10_000)
        for (value, expected) in [(summary.p50, 5_000.0), (summary.p90, 9_000.0), (summary.p99, 9_900.0),
                                  (summary.p999, 9_990.0), (summary.max, 10_000.0)] {
            #expect(abs(value - expected) <= expected * 0.001 + 0.1, "\(value) vs \(expected)")
        }
        #expect(abs(summary.mean - 5_000.5) < 5)
    }
}
