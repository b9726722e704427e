import Glibc

/// The ids of the objects in a durable copy that carry no identity tag: symbolic links and
/// special files (Linux keeps no `user.*` attribute on them), and every object on a file system
/// without `user.*` attributes. A rebuild learns identities from the tags; for these it looks
/// here instead, by the object's inode number in the copy, so that a client's handle to a
/// symbolic link survives a takeover (or a lost instance) as a file's does.
///
/// The log (`JournalDirectory.untaggedIdentitiesPath`, beside the copy, never in it) is a
/// run of 16-byte records, inode then id (little-endian), appended by the checkpoint that
/// creates such an object and made durable with the copy (`TreeApplier.sync`); the last
/// record of an inode number wins (a number freed and reused by a later object).
package enum UntaggedIdentities {
    package final class Log {
        let fd: Int32

        package init(path: String) throws {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw JournalError(.io, "open \(path): errno \(errno)") }
        }

        func note(inode: UInt64, id: UInt64) throws {
            var record = [UInt8](repeating: 0, count: 16)
            for i in 0..<8 {
                record[i] = UInt8(truncatingIfNeeded: inode >> UInt64(8 * i))
                record[8 + i] = UInt8(truncatingIfNeeded: id >> UInt64(8 * i))
            }
            let n = record.withUnsafeBytes { write(fd, $0.baseAddress, 16) }
            guard n == 16 else { throw JournalError(errno == ENOSPC ? .noSpace : .io, "untagged identities: errno \(errno)") }
        }

        func sync() throws {
            guard fsync(fd) == 0 else { throw JournalError(errno == ENOSPC ? .noSpace : .io, "fsync untagged identities: errno \(errno)") }
        }

        func close() { _ = Glibc.close(fd) }
    }

    /// Every recorded id by inode number (none when there is no log).
    package static func load(_ path: String) -> [UInt64: UInt64] {
        guard let bytes = try? JournalDirectory.readFile(path) else { return [:] }
        var out: [UInt64: UInt64] = [:]
        var i = 0
        while i + 16 <= bytes.count {
            var inode: UInt64 = 0, id: UInt64 = 0
            for k in 0..<8 {
                inode |= UInt64(bytes[i + k]) << UInt64(8 * k)
                id |= UInt64(bytes[i + 8 + k]) << UInt64(8 * k)
            }
            out[inode] = id
            i += 16
        }
        return out
    }
}
