/// The byte ranges of one file written UNSTABLE and not yet in the journal: sorted, disjoint
/// and not touching. At most `maxRanges` of them: past that they are widened to a coarser
/// grain (4 KiB, then 64 KiB, ...), so a file written at random costs a bounded array,
/// and at worst a flush copies a little around each write.
public struct DirtyRanges: Sendable, Equatable {
    public private(set) var ranges: [Range<UInt64>] = []
    /// Every range starts and ends on a multiple of this (1: exact).
    public private(set) var grain: UInt64 = 1
    public let maxRanges: Int

    public init(maxRanges: Int = 1024) {
        self.maxRanges = max(2, maxRanges)
    }

    public var isEmpty: Bool { ranges.isEmpty }
    public var byteCount: UInt64 { ranges.reduce(0) { $0 + UInt64($1.count) } }

    /// Adds `range`; returns how many bytes were not dirty before (what the total grows by).
    @discardableResult
    public mutating func insert(_ range: Range<UInt64>) -> UInt64 {
        guard !range.isEmpty else { return 0 }
        let before = byteCount
        merge(widened(range))
        if ranges.count > maxRanges { coarsen() }
        return byteCount - before
    }

    private func widened(_ r: Range<UInt64>) -> Range<UInt64> {
        guard grain > 1 else { return r }
        let lower = r.lowerBound / grain * grain
        let (up, overflow) = r.upperBound.addingReportingOverflow(grain - 1)
        return lower..<(overflow ? UInt64.max : up / grain * grain)
    }

    /// Inserts `r`, merging it with every range it overlaps or touches.
    private mutating func merge(_ r: Range<UInt64>) {
        // The first range that ends at or after r starts (it may touch or overlap r).
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < r.lowerBound { low = mid + 1 } else { high = mid }
        }
        var end = low
        var merged = r
        while end < ranges.count, ranges[end].lowerBound <= merged.upperBound {
            merged = min(merged.lowerBound, ranges[end].lowerBound)..<max(merged.upperBound, ranges[end].upperBound)
            end += 1
        }
        ranges.replaceSubrange(low..<end, with: [merged])
    }

    private mutating func coarsen() {
        while ranges.count > maxRanges {
            grain = grain == 1 ? 4096 : grain * 16
            let old = ranges
            ranges = []
            ranges.reserveCapacity(old.count)
            for r in old.map(widened) {
                if let last = ranges.last, last.upperBound >= r.lowerBound {
                    ranges[ranges.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
                } else {
                    ranges.append(r)
                }
            }
        }
    }

    /// The ranges cut into pieces of at most `size` bytes (one journal record each).
    public func pieces(of size: UInt64) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        for r in ranges {
            var at = r.lowerBound
            while at < r.upperBound {
                let end = r.upperBound - at > size ? at + size : r.upperBound
                out.append(at..<end)
                at = end
            }
        }
        return out
    }
}
