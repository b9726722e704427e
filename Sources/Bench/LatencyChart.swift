#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An SVG chart of latency distributions: one panel per workload and concurrency, one line per
/// server, latency (log scale) against percentile on the usual HDR "nines" scale, where 90%,
/// 99%, 99.9% ... are evenly spaced.
package enum LatencyChart {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    static let panelWidth = 520.0, panelHeight = 300.0
    static let margin = (left: 64.0, right: 30.0, top: 34.0, bottom: 40.0)
    static let columns = 2
    /// The right edge of the x axis: 99.999%.
    static let maxNines = 5.0

    /// Where a percentile sits on the x axis, in nines (0 for 0%, 2 for 99%); 100% at the right edge.
    static func nines(_ percentile: Double) -> Double {
        percentile >= 100 ? maxNines : min(maxNines, log10(100 / (100 - percentile)))
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// One decimal, no exponent.
    static func format(_ v: Double) -> String {
        let tenths = Int((v * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        return "\(sign)\(abs(tenths) / 10).\(abs(tenths) % 10)"
    }

    static func latencyLabel(decade: Int) -> String {
        switch decade {
        case ..<3: return "\(Int(pow(10, Double(decade)))) µs"
        case 3..<6: return "\(Int(pow(10, Double(decade - 3)))) ms"
        default: return "\(Int(pow(10, Double(decade - 6)))) s"
        }
    }

    /// The chart of `results` (from any number of servers and runs).
    package static func svg(_ results: [BenchResult], title: String = "Latency by percentile (lower is better)") -> String {
        var keys: [String] = []
        var labels: [String] = []
        for r in results {
            if !keys.contains(r.runKey) { keys.append(r.runKey) }
            if !labels.contains(r.label) { labels.append(r.label) }
        }
        let rowsOfPanels = max(1, (keys.count + columns - 1) / columns)
        let legendHeight = 24.0 * Double((labels.count + 3) / 4) + 40
        let width = panelWidth * Double(min(columns, max(1, keys.count)))
        let height = legendHeight + panelHeight * Double(rowsOfPanels)
        var out = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(format(width))" height="\(format(height))" \
        viewBox="0 0 \(format(width)) \(format(height))" font-family="sans-serif" font-size="11">
        <rect x="0" y="0" width="\(format(width))" height="\(format(height))" fill="#ffffff"/>
        <text x="12" y="22" font-size="15" font-weight="bold">\(escape(title))</text>

        """
        for (i, label) in labels.enumerated() {
            let x = 12 + Double(i % 4) * 250, y = 44 + Double(i / 4) * 24
            let color = palette[i % palette.count]
            out += "<line x1=\"\(format(x))\" y1=\"\(format(y - 4))\" x2=\"\(format(x + 24))\" y2=\"\(format(y - 4))\" stroke=\"\(color)\" stroke-width=\"3\"/>"
            out += "<text x=\"\(format(x + 30))\" y=\"\(format(y))\">\(escape(label))</text>\n"
        }
        for (p, key) in keys.enumerated() {
            let originX = panelWidth * Double(p % columns), originY = legendHeight + panelHeight * Double(p / columns)
            let series = labels.enumerated().compactMap { (i, label) -> (String, [[Double]])? in
                guard let r = results.last(where: { $0.label == label && $0.runKey == key }) else { return nil }
                return (palette[i % palette.count], r.latencyMicroseconds.distribution)
            }
            out += panel(key, series: series, x: originX, y: originY)
        }
        return out + "</svg>\n"
    }

    static func panel(_ title: String, series: [(color: String, points: [[Double]])], x: Double, y: Double) -> String {
        let plotX = x + margin.left, plotY = y + margin.top
        let plotW = panelWidth - margin.left - margin.right, plotH = panelHeight - margin.top - margin.bottom
        let values = series.flatMap { $0.points.compactMap { $0.count == 2 && $0[1] > 0 ? $0[1] : nil } }
        let lowDecade = Int(floor(log10(values.min() ?? 1)))
        let highDecade = max(lowDecade + 1, Int(ceil(log10(values.max() ?? 10))))
        func px(_ nines: Double) -> Double { plotX + nines / maxNines * plotW }
        func py(_ us: Double) -> Double {
            let t = (log10(max(us, 1e-3)) - Double(lowDecade)) / Double(highDecade - lowDecade)
            return plotY + plotH - t * plotH
        }
        var out = "<g>\n<text x=\"\(format(plotX))\" y=\"\(format(y + 20))\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>\n"
        out += "<rect x=\"\(format(plotX))\" y=\"\(format(plotY))\" width=\"\(format(plotW))\" height=\"\(format(plotH))\" fill=\"none\" stroke=\"#888888\"/>\n"
        for d in lowDecade...highDecade {
            let yy = py(pow(10, Double(d)))
            out += "<line x1=\"\(format(plotX))\" y1=\"\(format(yy))\" x2=\"\(format(plotX + plotW))\" y2=\"\(format(yy))\" stroke=\"#e0e0e0\"/>"
            out += "<text x=\"\(format(plotX - 6))\" y=\"\(format(yy + 4))\" text-anchor=\"end\">\(latencyLabel(decade: d))</text>\n"
        }
        let tickNames = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        for (n, name) in tickNames.enumerated() {
            let xx = px(Double(n))
            out += "<line x1=\"\(format(xx))\" y1=\"\(format(plotY))\" x2=\"\(format(xx))\" y2=\"\(format(plotY + plotH))\" stroke=\"#e0e0e0\"/>"
            out += "<text x=\"\(format(xx))\" y=\"\(format(plotY + plotH + 16))\" text-anchor=\"middle\">\(name)</text>\n"
        }
        out += "<text x=\"\(format(plotX + plotW / 2))\" y=\"\(format(plotY + plotH + 32))\" text-anchor=\"middle\">percentile</text>\n"
        for s in series {
            let points = s.points.filter { $0.count == 2 }.map { "\(format(px(nines($0[0])))),\(format(py($0[1])))" }
            out += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
        }
        return out + "</g>\n"
    }
}
