import Bench
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A result as a run would make it, with `latencies` in microseconds.
func sampleResult(label: String, workload: String = "getattr", inflight: Int = 1, opsPerSecond: Double = 1000,
                  latencies: [UInt64] = Array(100...200), errors: UInt64 = 1) -> BenchResult {
    var recorder = LatencyRecorder()
    for us in latencies { recorder.record(nanoseconds: us * 1000) }
    return BenchResult(label: label, workload: workload, connections: 1, inflight: inflight, seconds: 2,
                       operations: UInt64(opsPerSecond * 2), errors: errors,
                       errorKinds: errors > 0 ? ["READ data mismatch": errors] : [:],
                       bytes: 8_192_000, latency: recorder.summary())
}

@Suite("Result lines, tables and charts")
struct ResultFormatTests {
    @Test("a result is one line of JSON with the documented keys, and reads back the same")
    func jsonLineRoundTrip() throws {
        let result = sampleResult(label: "swiftnfs")
        let line = try result.jsonLine()
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        for key in ["type", "label", "workload", "connections", "inflight", "seconds", "operations", "errors",
                    "error_kinds", "bytes", "ops_per_s", "mb_per_s", "latency_us"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #expect(object["type"] as? String == "result")
        #expect(object["ops_per_s"] as? Double == 1000)
        #expect(object["mb_per_s"] as? Double == 4.1)
        let latency = try #require(object["latency_us"] as? [String: Any])
        for key in ["p50", "p90", "p99", "p99.9", "max", "mean", "distribution"] {
            #expect(latency[key] != nil, "missing latency_us.\(key)")
        }
        #expect(latency["max"] as? Double == 200)

        let text = "\n{\"type\":\"note\",\"text\":\"not a result\"}\n" + line + "\n"
        #expect(try BenchResult.parseLines(text) == [result])
    }

    @Test("the SVG chart is well-formed XML with one line per server and panel, labels escaped")
    func chartIsWellFormed() throws {
        let results = [
            sampleResult(label: "swift<nfs>", workload: "getattr"),
            sampleResult(label: "ganesha & co", workload: "getattr", latencies: Array(150...400)),
            sampleResult(label: "swift<nfs>", workload: "read4k", inflight: 16),
            sampleResult(label: "ganesha & co", workload: "read4k", inflight: 16),
        ]
        let svg = LatencyChart.svg(results)
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = ElementCounter()
        parser.delegate = counter
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        #expect(counter.counts["svg"] == 1)
        #expect(counter.counts["polyline"] == 4)
        #expect(counter.texts.contains("swift<nfs>"))
        #expect(counter.texts.contains("getattr 1x1"))
        #expect(counter.texts.contains("read4k 1x16"))
    }

    @Test("the comparison gives SwiftNFS over the baseline, per workload and concurrency")
    func comparisonRatios() {
        let candidate = [sampleResult(label: "swiftnfs", opsPerSecond: 3000, latencies: [100]),
                         sampleResult(label: "swiftnfs", workload: "read4k", opsPerSecond: 1000, latencies: [400])]
        let baseline = [sampleResult(label: "ganesha", opsPerSecond: 1000, latencies: [200]),
                        sampleResult(label: "ganesha", workload: "read4k", opsPerSecond: 1000, latencies: [200])]
        let comparison = BenchComparison(candidate: candidate, baseline: baseline)
        #expect(comparison.rows.count == 2)
        #expect(comparison.rows[0].opsRatio == 3)
        #expect(comparison.rows[0].p99Ratio == 0.5)
        #expect(comparison.rows[1].p99Ratio == 2)
        // sampleResult has one error on each side: no row meets the goal, however fast.
        #expect(comparison.rowsMeetingGoal == 0)
        #expect(comparison.rows[0].verdict == "no: errors")
        #expect(comparison.rows[1].verdict == "no: ops, p99, errors")
        let clean = BenchComparison(candidate: [sampleResult(label: "swiftnfs", opsPerSecond: 1500, latencies: [200], errors: 0)],
                                    baseline: [sampleResult(label: "ganesha", opsPerSecond: 1000, latencies: [200], errors: 0)])
        #expect(clean.rows.map(\.verdict) == ["yes"])
        let markdown = comparison.markdown()
        #expect(markdown.contains("| getattr | 1x1 | 3000 | 1000 | 3.00 | 100 | 200 | 0.50 | no: errors | 2 |"), "\(markdown)")
    }
}

/// Counts elements and collects text, to check a document parses and has what it should.
final class ElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    var texts: [String] = []
    private var text = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        counts[name, default: 0] += 1
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" { texts.append(text) }
        text = ""
    }
}
