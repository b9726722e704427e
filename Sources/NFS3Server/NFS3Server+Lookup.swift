import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.3. ".." of the export root is the root itself: a lookup never climbs out.
    func lookup(_ call: NFS3LookupCall, context: NFS3CallContext) -> NFS3LookupReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, dir) = try resolve(call.what.directory)
            resolved = (export, dir)
            let a = try export.store.lookup(dir, name: call.what.name)
            return NFS3LookupReply(result: .okay(NFS3LookupOkay(
                object: handle(export, a.fileID),
                objectAttributes: NFS3FileAttributes(a, fsid: export.store.exportID),
                directoryAttributes: postOp(export, dir))))
        } catch {
            return NFS3LookupReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }

    /// LOOKUP of a name the handle cache and the identity index already know in a directory
    /// the cache holds, or nil (the call then takes the way above).
    func lookupFromCache(_ call: NFS3LookupCall) -> NFS3LookupReply? {
        guard let (export, dir) = try? resolve(call.what.directory),
              let a = export.store.cachedLookup(dir, name: call.what.name),
              let dirAttributes = export.store.cachedAttributes(of: dir) else { return nil }
        let fsid = export.store.exportID
        return NFS3LookupReply(result: .okay(NFS3LookupOkay(
            object: handle(export, a.fileID), objectAttributes: NFS3FileAttributes(a, fsid: fsid),
            directoryAttributes: NFS3FileAttributes(dirAttributes, fsid: fsid))))
    }
}
