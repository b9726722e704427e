import NIOCore

/// A change the server made to an exported tree, as the write-back journal records it.
///
/// Every change names the files it touches both by file id (to find them in the served tree,
/// whose state may be ahead of the journal after a crash) and by path relative to the export
/// root (for the durable copy, whose paths are exactly the journal's). Times are concrete
/// (never "now"), so replaying a change gives the same result every time.
public enum FileChange: Hashable, Sendable {
    /// Data written at an offset of a regular file.
    case write(fileID: UInt64, path: [UInt8], offset: UInt64, data: [UInt8])
    /// Attributes set (size for a truncate or extend).
    case setAttributes(fileID: UInt64, path: [UInt8], AttributeValues)
    /// A new object named `path` (whose last component is its name).
    case create(fileID: UInt64, path: [UInt8], type: FileType, mode: UInt32, uid: UInt32, gid: UInt32,
                rdev: UInt64, target: [UInt8])
    /// A name removed (the object too when it was its last link).
    case remove(fileID: UInt64, path: [UInt8], isDirectory: Bool)
    case rename(fileID: UInt64, from: [UInt8], to: [UInt8])
    case link(fileID: UInt64, existing: [UInt8], new: [UInt8])
    /// Everything up to and including `through` is in the durable copy.
    case checkpoint(through: UInt64)
    /// The reply a client got for a change, as the server's duplicate request cache keeps it
    /// (its key and the reply's bytes, opaque here): changes no file. Recorded right after the
    /// change, so that a standby that takes over, or the server restarted, answers the
    /// client's retransmission with it instead of making the change again.
    case reply(entry: [UInt8])
}

extension FileChange {
    /// The file the change is about (0 for none: a checkpoint).
    public var fileID: UInt64 {
        switch self {
        case .write(let id, _, _, _), .setAttributes(let id, _, _), .create(let id, _, _, _, _, _, _, _),
             .remove(let id, _, _), .rename(let id, _, _), .link(let id, _, _):
            id
        case .checkpoint, .reply: 0
        }
    }

    /// Whether the change is to a file (not a checkpoint or a reply: nothing to apply to a tree).
    public var changesFiles: Bool {
        switch self {
        case .write, .setAttributes, .create, .remove, .rename, .link: true
        case .checkpoint, .reply: false
        }
    }

    /// Whether the change adds, removes or moves a name.
    public var isNamespaceChange: Bool {
        switch self {
        case .create, .remove, .rename, .link: true
        case .write, .setAttributes, .checkpoint, .reply: false
        }
    }
}

/// Attribute values as they were set (concrete; see `FileChange`).
public struct AttributeValues: Hashable, Sendable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: UInt64?
    public var atime: FileTime?
    public var mtime: FileTime?

    public init(mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: UInt64? = nil,
                atime: FileTime? = nil, mtime: FileTime? = nil) {
        self.mode = mode; self.uid = uid; self.gid = gid; self.size = size; self.atime = atime; self.mtime = mtime
    }
}

/// Where the file store reports its changes (the journal), and how it waits for them to be
/// durable.
public protocol ChangeRecorder: Sendable {
    /// Waits until the journal can take a change of about `bytes` (back-pressure), before the
    /// change is made and before any lock of the store is taken, and holds that room until
    /// `releaseRoom`; throws when it cannot (the durable side has failed for too long), and the
    /// change is then not made.
    func waitForRoom(bytes: Int) throws
    /// `waitForRoom` without waiting: whether the room was there and is now held.
    func reserveRoom(bytes: Int) -> Bool
    func releaseRoom(bytes: Int)
    /// Records a change to export `exportID`; returns its sequence number.
    func record(_ change: FileChange, exportID: UInt64) -> UInt64
    /// Records a `.write` whose data is in a received buffer (no copy into an array first).
    func recordWrite(fileID: UInt64, path: [UInt8], offset: UInt64, data: ByteBuffer, exportID: UInt64) -> UInt64
    /// Returns once every change up to `sequence` is on stable storage; throws when the durable
    /// side cannot take it (no space, I/O error).
    func makeDurable(through sequence: UInt64) throws
    /// `makeDurable` without holding the caller's thread: `done` is called, from any thread,
    /// with nil once every change up to `sequence` is on stable storage, or with the error.
    func whenDurable(through sequence: UInt64, _ done: @escaping @Sendable (Error?) -> Void)
    /// The sequence of the last change recorded.
    var lastRecorded: UInt64 { get }
}
