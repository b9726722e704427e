import CNFSShims

/// CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected as 0x82F63B78), the checksum of every
/// journal record: it catches torn and corrupted records (RFC 3720 uses it for the same reason).
/// Computed by the CPU's crc32 instruction where there is one (SSE 4.2): every byte written
/// to the journal goes through it.
package enum CRC32C {
    package static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        ~cnfs_crc32c_update(~seed, bytes.baseAddress, bytes.count)
    }

    package static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }
}
