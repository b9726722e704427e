import NIOCore

/// The bytes the benchmark writes and expects to read back: a pseudo-random function of the
/// file offset, so any range of a file can be checked without remembering what was written
/// where. Byte `o` of a file is byte `o % 8` (little-endian) of `mix(o / 8 ^ seed)`.
package struct DataPattern: Hashable, Sendable {
    package var seed: UInt64

    package init(seed: UInt64) { self.seed = seed }

    /// SplitMix64's finaliser: every input bit affects every output bit.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The pattern's bytes for `offset ..< offset + count`.
    package func bytes(offset: UInt64, count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            var i = 0
            var o = offset
            while i < count {
                let word = Self.mix((o >> 3) ^ seed)
                let first = Int(o & 7)
                let take = min(8 - first, count - i)
                for k in 0..<take { raw[i + k] = UInt8(truncatingIfNeeded: word >> ((first + k) * 8)) }
                i += take
                o += UInt64(take)
            }
            return count
        }
        return buffer
    }
}

/// A file's whole expected content, computed once, so that the data of a WRITE is a slice of
/// it and a READ is checked with one comparison.
package struct PatternedFile: Sendable {
    package let pattern: DataPattern
    package let size: Int
    let content: ByteBuffer

    package init(pattern: DataPattern, size: Int) {
        self.pattern = pattern
        self.size = size
        self.content = pattern.bytes(offset: 0, count: size)
    }

    /// The expected bytes at `offset ..< offset + count` (a slice, not a copy).
    package func slice(offset: UInt64, count: Int) -> ByteBuffer {
        content.getSlice(at: Int(offset), length: count)!
    }
}
