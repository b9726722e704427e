import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.5. The target is returned as stored; the server itself never follows it.
    func readlink(_ call: NFS3ReadlinkCall, context: NFS3CallContext) -> NFS3ReadlinkReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, id) = try resolve(call.symlink)
            resolved = (export, id)
            let path = try export.store.readLink(id)
            return NFS3ReadlinkReply(result: .okay(NFS3ReadlinkOkay(attributes: postOp(export, id), path: path)))
        } catch {
            return NFS3ReadlinkReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }
}
