import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.20, with the limits of Linux local file systems.
    func pathconf(_ call: NFS3PathconfCall, context: NFS3CallContext) -> NFS3PathconfReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, id) = try resolve(call.object)
            resolved = (export, id)
            let a = try attributes(export, id)
            let nameMax = (try? export.store.statistics().maxNameLength) ?? 255
            return NFS3PathconfReply(result: .okay(NFS3PathconfOkay(
                attributes: a, linkMax: 65_000, nameMax: nameMax, noTrunc: true, chownRestricted: true,
                caseInsensitive: false, casePreserving: true)))
        } catch {
            return NFS3PathconfReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }
}
