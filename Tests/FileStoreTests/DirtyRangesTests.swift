@testable import FileStore
import Testing

/// The ranges of UNSTABLE data waiting for the journal: merged, bounded, cut into records.
struct DirtyRangesTests {
    @Test("overlapping and touching ranges merge; separate ones stay apart, in order")
    func merging() {
        var d = DirtyRanges()
        #expect(d.insert(100..<200) == 100)
        #expect(d.insert(300..<400) == 100)
        #expect(d.insert(150..<250) == 50, "only the new part counts")
        #expect(d.insert(100..<400) == 50, "the gap between the two")
        #expect(d.ranges == [100..<400])
        #expect(d.insert(400..<410) == 10)
        #expect(d.ranges == [100..<410], "a range that touches another merges with it")
        #expect(d.insert(0..<10) == 10)
        #expect(d.insert(50..<60) == 10)
        #expect(d.ranges == [0..<10, 50..<60, 100..<410])
        #expect(d.insert(5..<5) == 0 && d.byteCount == 330)
    }

    @Test("past maxRanges the ranges widen to a coarser grain; every written byte stays covered")
    func bounded() {
        var d = DirtyRanges(maxRanges: 64)
        var written: [Range<UInt64>] = []
        var random = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let start = UInt64.random(in: 0..<(64 << 20), using: &random) / 512 * 512
            let r = start..<start + 512
            written.append(r)
            d.insert(r)
            #expect(d.ranges.count <= 64)
        }
        #expect(d.grain > 1)
        for w in written {
            #expect(d.ranges.contains { $0.lowerBound <= w.lowerBound && w.upperBound <= $0.upperBound }, "\(w) not covered")
        }
        for (a, b) in zip(d.ranges, d.ranges.dropFirst()) { #expect(a.upperBound < b.lowerBound, "ranges overlap or touch") }
    }

    @Test("pieces of at most a given size, covering the ranges exactly")
    func pieces() {
        var d = DirtyRanges()
        d.insert(0..<2_500_000)
        d.insert(3_000_000..<3_000_010)
        let pieces = d.pieces(of: 1 << 20)
        #expect(pieces == [0..<1_048_576, 1_048_576..<2_097_152, 2_097_152..<2_500_000, 3_000_000..<3_000_010])
    }

    @Test("a range at the end of the offsets does not overflow when widened")
    func endOfOffsets() {
        var d = DirtyRanges(maxRanges: 2)
        d.insert(0..<1)
        d.insert(100..<101)
        d.insert((UInt64.max - 10)..<UInt64.max)
        #expect(d.ranges.last?.upperBound == UInt64.max)
    }
}
