import FileStore
import Glibc

/// The journal's injected I/O errors (`Failpoint.journalIO`, for tests).
enum JournalFaults {
    /// The injected error, while the failpoint is active.
    static func injected(_ operation: String, _ path: String) -> JournalError? {
        guard Failpoint.journalIO.isActive else { return nil }
        return JournalError(.io, "\(operation) \(path): errno \(EIO) (injected)")
    }

    static func check(_ operation: String, _ path: String) throws {
        if let error = injected(operation, path) { throw error }
    }
}
