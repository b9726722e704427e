import FileStore
import Logging
import NFS3
import NIOConcurrencyHelpers
import NIOCore
import ONCRPC

/// One exported directory as the NFS server sees it.
public struct NFS3Export: Sendable {
    public var path: String
    public var store: FileStore
    public var readOnly: Bool

    public init(path: String, store: FileStore, readOnly: Bool) {
        self.path = path
        self.store = store
        self.readOnly = readOnly
    }
}

/// The write verifier (RFC 1813 §3.3.7): random at every start, so it differs across restarts
/// however fast they are, and replaced whenever a write or fsync fails, so clients resend
/// everything they have not seen committed (knfsd: "Reset the boot verifier on all write I/O
/// errors").
public final class WriteVerifier: Sendable {
    private let value = NIOLockedValueBox(UInt64.random(in: 1...UInt64.max))

    public init() {}

    public var current: NFS3Verifier { NFS3Verifier(value.withLockedValue { $0 }) }

    public func reset() {
        value.withLockedValue { v in
            var n = v
            while n == v { n = UInt64.random(in: 1...UInt64.max) }
            v = n
        }
    }
}

/// NFSv3 semantics (RFC 1813) over the exports' file stores, one file per procedure.
/// Every method is synchronous and blocking: the transport runs them on its thread pool.
public struct NFS3Server: Sendable {
    let exports: [UInt64: NFS3Export]
    public let verifier: WriteVerifier
    let handleKey: SipHash24
    let logger: Logger

    public init(exports: [NFS3Export], handleKey: SipHash24, verifier: WriteVerifier = WriteVerifier(), logger: Logger) {
        self.handleKey = handleKey
        var byID: [UInt64: NFS3Export] = [:]
        for e in exports { byID[e.store.exportID] = e }
        self.exports = byID
        self.verifier = verifier
        self.logger = logger
    }

    /// The export and file id a handle names.
    func resolve(_ fh: NFS3FileHandle) throws -> (NFS3Export, UInt64) {
        guard let h = FileHandleFormat(bytes: fh.bytes, key: handleKey) else { throw NFS3Status.badhandle }
        guard let export = exports[h.exportID] else { throw NFS3Status.stale }
        return (export, try export.store.fileID(fromHandle: fh.bytes))
    }

    func handle(_ export: NFS3Export, _ id: UInt64) -> NFS3FileHandle {
        NFS3FileHandle(export.store.handle(for: id))
    }

    func attributes(_ export: NFS3Export, _ id: UInt64) throws -> NFS3FileAttributes {
        NFS3FileAttributes(try export.store.attributes(of: id), fsid: export.store.exportID)
    }

    /// post_op_attr: attributes if they can be had, nothing otherwise.
    func postOp(_ export: NFS3Export, _ id: UInt64) -> NFS3FileAttributes? {
        try? attributes(export, id)
    }

    /// pre_op_attr.
    func preOp(_ export: NFS3Export, _ id: UInt64) -> NFS3WCCAttributes? {
        (try? attributes(export, id)).map { NFS3WCCAttributes(size: $0.size, mtime: $0.mtime, ctime: $0.ctime) }
    }

    func requireWritable(_ export: NFS3Export) throws {
        if export.readOnly { throw NFS3Status.rofs }
    }

    /// Resolves a directory handle, failing with NFS3ERR_NOTDIR for anything else.
    func resolveDirectory(_ fh: NFS3FileHandle) throws -> (NFS3Export, UInt64) {
        let (export, id) = try resolve(fh)
        guard try export.store.attributes(of: id).type == .directory else { throw NFS3Status.notdir }
        return (export, id)
    }
}

extension NFS3FileAttributes {
    init(_ a: FileAttributes, fsid: UInt64) {
        let type: NFS3FileType = switch a.type {
        case .regular: .regular
        case .directory: .directory
        case .blockDevice: .blockDevice
        case .characterDevice: .characterDevice
        case .symlink: .link
        case .socket: .socket
        case .fifo: .fifo
        }
        self.init(type: type, mode: a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, size: a.size, used: a.used,
                  rdev: NFS3SpecData(major: a.rdevMajor, minor: a.rdevMinor), fsid: fsid, fileid: a.fileID,
                  atime: NFS3Time(a.atime), mtime: NFS3Time(a.mtime), ctime: NFS3Time(a.ctime))
    }
}

extension NFS3Time {
    init(_ t: FileTime) {
        self.init(seconds: UInt32(truncatingIfNeeded: t.seconds), nanoseconds: t.nanoseconds)
    }
}

extension FileTime {
    init(_ t: NFS3Time) {
        self.init(seconds: Int64(t.seconds), nanoseconds: min(t.nanoseconds, 999_999_999))
    }
}
