import FileStore
import NFS3
import NIOCore
import ONCRPC

extension NFS3Server {
    /// Runs a change to directory `fh` with weak cache consistency data around it (RFC 1813
    /// §2.6): attributes before, the change, attributes after; in failure replies too. On a
    /// `sync` export the directory, and the objects `committing` names besides, are stable
    /// before the reply (`makeDurable`).
    func changeDirectory<T>(_ context: NFS3CallContext, _ fh: NFS3FileHandle, committing: (T) -> [UInt64] = { _ in [] },
                            _ body: (NFS3Export, UInt64) throws -> T) -> (Result<T, NFS3Status>, NFS3WCCData) {
        var resolved: (NFS3Export, UInt64)?
        var before: NFS3WCCAttributes?
        do {
            let (export, dir) = try resolveDirectory(fh)
            resolved = (export, dir)
            before = preOp(export, dir)
            try requireWritable(context)
            let value = try body(export, dir)
            try makeDurable(export, context, committing: [dir] + committing(value))
            return (.success(value), NFS3WCCData(before: before, after: postOp(export, dir)))
        } catch {
            let after = resolved.flatMap { postOp($0.0, $0.1) }
            return (.failure(NFS3Status(error)), NFS3WCCData(before: before, after: after))
        }
    }

    /// On a `sync` export a change is answered only once it is on stable storage: with a
    /// journal, once the records covering it are; without one, once `objects` (the
    /// directories whose entries it changed, the object it made or changed) are fsynced, as
    /// knfsd's `sync` does. A failure there replaces the write verifier and fails the call.
    /// When the call's reply can be held (`context.durability`), the wait is left to the hold
    /// and this thread goes on at once; otherwise it waits here.
    func makeDurable(_ export: NFS3Export, _ context: NFS3CallContext, force: Bool = false, committing objects: [UInt64] = []) throws {
        guard force || context.access.sync, let point = export.store.durablePoint(committing: objects) else { return }
        if let wait = context.durability, wait.hold(for: export.store, through: point) { return }
        do {
            try export.store.makeDurable(through: point)
        } catch {
            durabilityFailed(error)
            throw error
        }
    }

    func durabilityFailed(_ error: Error) {
        verifier.reset()
        logger.warning("durable side failed; write verifier replaced", metadata: ["nfs.error": "\(error)"])
    }

    /// The reply of the procedures that make a new object (CREATE, MKDIR, SYMLINK, MKNOD).
    func newObjectResult(_ export: NFS3Export, _ result: (Result<FileAttributes, NFS3Status>, NFS3WCCData))
        -> NFS3Result<NFS3NewObjectOkay, NFS3WCCData>
    {
        switch result {
        case (.success(let a), let wcc):
            return .okay(NFS3NewObjectOkay(object: handle(export, a.fileID),
                                           attributes: NFS3FileAttributes(a, fsid: export.store.exportID),
                                           directoryWCC: wcc))
        case (.failure(let status), let wcc):
            return .fail(status, wcc)
        }
    }

    /// The export a handle belongs to, for replies built after the fact (nil if unknown).
    func export(of fh: NFS3FileHandle) -> NFS3Export? {
        FileHandleFormat(bytes: fh.bytes, key: handleKey).flatMap { exports[$0.exportID] }
    }

    /// Applies what a create-style sattr3 asks for beyond the mode given at creation.
    func applyRemaining(_ s: NFS3SetAttributes, to a: FileAttributes, in export: NFS3Export) throws -> FileAttributes {
        var changes = AttributeChanges(s)
        changes.mode = nil
        if changes.size == a.size { changes.size = nil }
        guard !changes.isEmpty else { return a }
        try export.store.setAttributes(a.fileID, changes)
        return try export.store.attributes(of: a.fileID)
    }
}

extension NFS3Result where Okay == NFS3NewObjectOkay, Fail == NFS3WCCData {
    static func failure(_ status: NFS3Status, _ wcc: NFS3WCCData) -> Self { .fail(status, wcc) }
}

/// What the reply of one call waits for: the journal records of its change on stable storage.
/// A procedure notes the point (`makeDurable`) instead of waiting for it; the program then
/// holds the reply until the journal's fsync covers it (`NFS3DurabilityHold`), and the thread
/// takes the next call meanwhile. Used by the one thread that runs the call.
package final class NFS3DurabilityWait: @unchecked Sendable {
    private(set) var store: FileStore?
    private(set) var point: UInt64 = 0

    package init() {}

    /// Notes that the reply waits for `store`'s changes through `point`; false when it already
    /// waits for another store's (the caller then waits itself).
    func hold(for store: FileStore, through point: UInt64) -> Bool {
        if let s = self.store, s !== store { return false }
        self.store = store
        self.point = max(self.point, point)
        return true
    }
}

/// Releases a reply once the changes it reports are on stable storage; when they cannot be
/// made so, sends NFS3ERR_IO (or NOSPC) with empty attributes instead and replaces the write
/// verifier, as a call that waited would have.
struct NFS3DurabilityHold: RPCReplyHold {
    let server: NFS3Server
    let procedure: NFS3Procedure
    let store: FileStore
    let point: UInt64
    /// Called with the status sent instead, or nil when the reply went as made (metrics).
    let released: @Sendable (NFS3Status?) -> Void

    func whenReleased(allocator: ByteBufferAllocator, _ release: @escaping @Sendable (ByteBuffer?) -> Void) {
        store.whenDurable(through: point) { [server, procedure, released] error in
            guard let error else {
                released(nil)
                return release(nil)
            }
            server.durabilityFailed(error)
            let status = NFS3Status(error)
            released(status)
            var results = allocator.buffer(capacity: 4 + procedure.emptyFailureArmSize)
            results.writeNFS3Status(status)
            results.writeRepeatingByte(0, count: procedure.emptyFailureArmSize)
            release(results)
        }
    }
}
