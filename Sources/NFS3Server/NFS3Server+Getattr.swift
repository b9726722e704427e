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
}
