import Glibc

/// Failures that tests inject into a running server through its environment. Each is named by
/// an environment variable holding a file path, and is active while that file exists, so a
/// test turns it on and off between calls without restarting the server. Without the variable
/// nothing is checked but one cached lookup.
///
/// - `SWIFTNFS_JOURNAL_FAULT`: every write and fsync of the journal fails with EIO, as on a disk
///   that stops answering and comes back. (A real block device returning EIO also loses the
///   metadata writes of the file system mounted on it, so after it "heals" the file system
///   itself is damaged, and a test could not tell the server's recovery from the file
///   system's.)
/// - `SWIFTNFS_JOURNAL_DELAY`: every fsync of the journal takes as many more milliseconds as
///   the file holds (a decimal number): a durable disk that is very slow but works.
/// - `SWIFTNFS_FULL_COPY_DELAY`: a standby takes as many more milliseconds as the file holds
///   over each chunk of a full copy it receives: a slow link, so a test can stop it halfway.
/// - `SWIFTNFS_DIE_BEFORE_RECORD`: the process exits at once after a namespace change has
///   reached the served tree and before its journal record is written: the moment a crash
///   would leave the tree ahead of the journal (see `PendingChange`).
public enum Failpoint: String, Sendable {
    case journalIO = "SWIFTNFS_JOURNAL_FAULT"
    case dieBeforeRecord = "SWIFTNFS_DIE_BEFORE_RECORD"
    case journalDelay = "SWIFTNFS_JOURNAL_DELAY"
    case fullCopyDelay = "SWIFTNFS_FULL_COPY_DELAY"

    private static let journalIOTrigger = trigger(.journalIO)
    private static let dieBeforeRecordTrigger = trigger(.dieBeforeRecord)
    private static let journalDelayTrigger = trigger(.journalDelay)
    private static let fullCopyDelayTrigger = trigger(.fullCopyDelay)

    private static func trigger(_ point: Failpoint) -> String? {
        getenv(point.rawValue).map { String(cString: $0) }
    }

    /// Whether the failure is to happen now.
    public var isActive: Bool {
        let path = switch self {
        case .journalIO: Self.journalIOTrigger
        case .dieBeforeRecord: Self.dieBeforeRecordTrigger
        case .journalDelay: Self.journalDelayTrigger
        case .fullCopyDelay: Self.fullCopyDelayTrigger
        }
        guard let path else { return false }
        return access(path, F_OK) == 0
    }

    /// `journalDelay`: the milliseconds its file holds, while it exists.
    public static var journalDelayMilliseconds: Int? { milliseconds(in: journalDelayTrigger) }

    /// `fullCopyDelay`: the milliseconds its file holds, while it exists.
    public static var fullCopyDelayMilliseconds: Int? { milliseconds(in: fullCopyDelayTrigger) }

    private static func milliseconds(in path: String?) -> Int? {
        guard let path else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return Int(String(decoding: bytes[0..<n].filter { $0 >= 48 && $0 <= 57 }, as: UTF8.self))
    }

    /// `dieBeforeRecord`: ends the process as SIGKILL would, with no clean-up.
    static func dieBeforeRecordIfActive() {
        if Failpoint.dieBeforeRecord.isActive { _exit(137) }
    }
}
