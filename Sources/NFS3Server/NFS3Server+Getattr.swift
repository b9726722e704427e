import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.1.
    func getattr(_ call: NFS3GetattrCall, context: NFS3CallContext) -> NFS3GetattrReply {
        do {
            let (export, id) = try resolve(call.object)
            return NFS3GetattrReply(result: .okay(try attributes(export, id)))
        } catch {
            return NFS3GetattrReply(result: .fail(NFS3Status(error), ()))
        }
    }

    /// GETATTR of a file the handle cache knows, or nil (the call then takes the way above).
    func getattrFromCache(_ call: NFS3GetattrCall) -> NFS3GetattrReply? {
        guard let (export, id) = try? resolve(call.object), let a = export.store.cachedAttributes(of: id) else { return nil }
        return NFS3GetattrReply(result: .okay(NFS3FileAttributes(a, fsid: export.store.exportID)))
    }
}
