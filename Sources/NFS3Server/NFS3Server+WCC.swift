import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// Runs a change to directory `fh` with weak cache consistency data around it (RFC 1813
    /// §2.6): attributes before, the change, attributes after; in failure replies too.
    func changeDirectory<T>(_ context: NFS3CallContext, _ fh: NFS3FileHandle,
                            _ body: (NFS3Export, UInt64) throws -> T) -> (Result<T, NFS3Status>, NFS3WCCData) {
        var resolved: (NFS3Export, UInt64)?
        var before: NFS3WCCAttributes?
        do {
            let (export, dir) = try resolveDirectory(fh)
            resolved = (export, dir)
            before = preOp(export, dir)
            try requireWritable(context)
            let value = try body(export, dir)
            try makeDurable(export, context)
            return (.success(value), NFS3WCCData(before: before, after: postOp(export, dir)))
        } catch {
            let after = resolved.flatMap { postOp($0.0, $0.1) }
            return (.failure(NFS3Status(error)), NFS3WCCData(before: before, after: after))
        }
    }

    /// On a `sync` export a change is answered only once the journal records covering it are
    /// on stable storage; a failure there replaces the write verifier and fails the call.
    func makeDurable(_ export: NFS3Export, _ context: NFS3CallContext, force: Bool = false) throws {
        guard force || context.access.sync else { return }
        do {
            try export.store.makeDurable()
        } catch {
            verifier.reset()
            logger.warning("durable side failed; write verifier replaced", metadata: ["nfs.error": "\(error)"])
            throw error
        }
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
