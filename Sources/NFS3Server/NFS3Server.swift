import FileStore
import Logging
import NFS3
import NIOConcurrencyHelpers
import NIOCore
import ONCRPC

/// One exported directory as the NFS server sees it.
package struct NFS3Export: Sendable {
    package var path: String
    package var store: FileStore
    /// What the export grants a client at this address, or nil if it is not a client.
    package var authorize: @Sendable (SocketAddress?) -> ClientAccess?

    package init(path: String, store: FileStore, authorize: @escaping @Sendable (SocketAddress?) -> ClientAccess?) {
        self.path = path
        self.store = store
        self.authorize = authorize
    }
}

/// The exports by export id, replaceable while serving (SIGHUP reloads the exports file).
package final class NFS3ExportRegistry: Sendable {
    private let exports = NIOLockedValueBox<[UInt64: NFS3Export]>([:])

    package init(_ list: [NFS3Export] = []) {
        replace(with: list)
    }

    package subscript(id: UInt64) -> NFS3Export? {
        exports.withLockedValue { $0[id] }
    }

    package func replace(with list: [NFS3Export]) {
        var byID: [UInt64: NFS3Export] = [:]
        for e in list { byID[e.store.exportID] = e }
        exports.withLockedValue { $0 = byID }
    }
}

/// The write verifier (RFC 1813 §3.3.7): random at every start, so it differs across restarts
/// however fast they are, and replaced whenever a write or fsync fails, so clients resend
/// everything they have not seen committed (knfsd: "Reset the boot verifier on all write I/O
/// errors").
package final class WriteVerifier: Sendable {
    private let value = NIOLockedValueBox(UInt64.random(in: 1...UInt64.max))

    package init() {}

    package var current: NFS3Verifier { NFS3Verifier(value.withLockedValue { $0 }) }

    package func reset() {
        value.withLockedValue { v in
            var n = v
            while n == v { n = UInt64.random(in: 1...UInt64.max) }
            v = n
        }
    }
}

/// NFSv3 semantics (RFC 1813) over the exports' file stores, one file per procedure.
/// Every method is synchronous and blocking: the transport runs them on its thread pool.
package struct NFS3Server: Sendable {
    let exports: NFS3ExportRegistry
    package let verifier: WriteVerifier
    let handleKey: SipHash24
    let logger: Logger
    let refusals = RefusalLog()
    /// What READDIRPLUS read, to answer the same listing again from (see `DirectoryListingCache`).
    let listings = DirectoryListingCache()

    package init(exports: NFS3ExportRegistry, handleKey: SipHash24, verifier: WriteVerifier = WriteVerifier(), logger: Logger) {
        self.handleKey = handleKey
        self.exports = exports
        self.verifier = verifier
        self.logger = logger
    }

    /// Checks the caller against the client list and options of the export `fh` belongs to.
    /// A handle that names no export is let through: the procedure answers it with
    /// NFS3ERR_BADHANDLE or NFS3ERR_STALE under the anonymous identity.
    func authorize(_ fh: NFS3FileHandle, context: RPCCallContext) -> Result<ClientAccess, NFS3Status> {
        guard let h = FileHandleFormat(bytes: fh.bytes, key: handleKey), let export = exports[h.exportID] else {
            return .success(ClientAccess(readOnly: true, requirePrivilegedPort: false, rootSquash: true, allSquash: true))
        }
        let peer = context.remoteAddress
        guard let access = export.authorize(peer) else {
            refuse(peer, export: export, reason: "not a client of this export")
            return .failure(.acces)
        }
        guard access.portAllowed(peer) else {
            refuse(peer, export: export, reason: "source port 1024 or above on a secure export (the client needs a privileged port, or the export 'insecure')")
            return .failure(.perm)
        }
        return .success(access)
    }

    func refuse(_ peer: SocketAddress?, export: NFS3Export, reason: String) {
        let address = peer?.ipAddress ?? "-"
        guard refusals.shouldLog("\(address) \(export.path) \(reason)") else { return }
        logger.warning("nfs call refused", metadata: [
            "nfs.client": "\(address)", "nfs.port": "\(peer?.port ?? 0)", "nfs.export": "\(export.path)", "nfs.reason": "\(reason)",
        ])
    }

    /// The export and file id a handle names.
    func resolve(_ fh: NFS3FileHandle) throws -> (NFS3Export, UInt64) {
        guard let h = FileHandleFormat(bytes: fh.bytes, key: handleKey) else { throw NFS3Status.badhandle }
        guard let export = exports[h.exportID] else { throw NFS3Status.stale }
        return (export, try export.store.fileID(fromHandle: fh.bytes))
    }

    /// What the lock manager locks: the export and file a handle names, for a caller the
    /// export serves, and whether that caller may only read it.
    package func lockTarget(_ handle: [UInt8], context: RPCCallContext)
        -> Result<(exportID: UInt64, fileID: UInt64, readOnly: Bool), NFS3Status> {
        guard handle.count <= NFS3.maxFileHandleSize else { return .failure(.badhandle) }
        let fh = NFS3FileHandle(handle)
        switch authorize(fh, context: context) {
        case .failure(let status): return .failure(status)
        case .success(let access):
            do {
                let (export, id) = try resolve(fh)
                return .success((export.store.exportID, id, access.readOnly))
            } catch {
                return .failure(NFS3Status(error))
            }
        }
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
        (try? export.store.attributes(of: id)).map(NFS3WCCAttributes.init)
    }

    /// NFS3ERR_ROFS for every modifying procedure on an export that is read-only for this client.
    func requireWritable(_ context: NFS3CallContext) throws {
        if context.access.readOnly { throw NFS3Status.rofs }
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

extension NFS3WCCAttributes {
    init(_ a: FileAttributes) {
        self.init(size: a.size, mtime: NFS3Time(a.mtime), ctime: NFS3Time(a.ctime))
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
