/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit pseudorandom function, used to
/// authenticate file handles, as knfsd's `sign_fh` does. Without the key nobody can make a
/// handle that passes the check, so a client cannot forge a handle for a file it was never given.
public struct SipHash24: Sendable {
    let k0: UInt64
    let k1: UInt64

    /// `key` must hold 16 bytes.
    public init(key: [UInt8]) {
        precondition(key.count == 16, "SipHash takes a 128-bit key")
        var a: UInt64 = 0, b: UInt64 = 0
        for i in 0..<8 { a |= UInt64(key[i]) << UInt64(8 * i) }
        for i in 0..<8 { b |= UInt64(key[8 + i]) << UInt64(8 * i) }
        k0 = a
        k1 = b
    }

    public func hash(_ message: some Collection<UInt8>) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ k0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ k1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ k0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ k1

        @inline(__always) func round() {
            v0 &+= v1; v1 = v1.rotl(13); v1 ^= v0; v0 = v0.rotl(32)
            v2 &+= v3; v3 = v3.rotl(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotl(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotl(17); v1 ^= v2; v2 = v2.rotl(32)
        }

        var m: UInt64 = 0
        var n = 0
        for byte in message {
            m |= UInt64(byte) << UInt64(8 * (n & 7))
            n += 1
            if n & 7 == 0 {
                v3 ^= m; round(); round(); v0 ^= m
                m = 0
            }
        }
        m |= UInt64(n & 0xff) << 56
        v3 ^= m; round(); round(); v0 ^= m
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always) fileprivate func rotl(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
