import Glibc

/// Injected I/O errors of the durable side, for tests. With `SWIFTNFS_JOURNAL_FAULT=PATH` in
/// the server's environment, every write and fsync of the journal fails with EIO while the file
/// PATH exists, and works again once it is gone.
///
/// Why not a real failing disk: a block device that returns I/O errors under a mounted file
/// system also loses that file system's metadata writes, so after "healing" it the file system
/// itself is damaged (EUCLEAN, lost blocks) and a test could not tell the server's recovery
/// from the file system's. The injected error fails exactly the journal's calls, as a disk
/// that fails and comes back would, and leaves the volume sound.
enum JournalFaults {
    static let trigger: String? = getenv("SWIFTNFS_JOURNAL_FAULT").map { String(cString: $0) }

    /// The injected error, while the trigger file exists.
    static func injected(_ operation: String, _ path: String) -> JournalError? {
        guard let trigger, access(trigger, F_OK) == 0 else { return nil }
        return JournalError(.io, "\(operation) \(path): errno \(EIO) (injected)")
    }

    static func check(_ operation: String, _ path: String) throws {
        if let error = injected(operation, path) { throw error }
    }
}
