import FileStore
import Glibc
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.4: what the caller may really do. The call runs with the caller's
    /// (squashed) identity, so each bit is the kernel's own answer (faccessat with AT_EACCESS,
    /// ACLs included); a read-only export takes away the modifying bits.
    func access(_ call: NFS3AccessCall, context: NFS3CallContext) -> NFS3AccessReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, id) = try resolve(call.object)
            resolved = (export, id)
            let okay = try export.store.withAccessCheck(id) { granted(call, context: context, export: export, $0, may: $1) }
            return NFS3AccessReply(result: .okay(okay))
        } catch {
            return NFS3AccessReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }

    /// ACCESS of a file the handle cache knows, or nil (the call then takes the way above).
    func accessFromCache(_ call: NFS3AccessCall, context: NFS3CallContext) -> NFS3AccessReply? {
        guard let (export, id) = try? resolve(call.object),
              let okay = export.store.cachedAccessCheck(id, { granted(call, context: context, export: export, $0, may: $1) })
        else { return nil }
        return NFS3AccessReply(result: .okay(okay))
    }

    func granted(_ call: NFS3AccessCall, context: NFS3CallContext, export: NFS3Export, _ a: FileAttributes,
                 may: (Int32) -> Bool) -> NFS3AccessOkay {
        let wanted = call.access
        var granted: UInt32 = 0
        if wanted & NFS3AccessMask.read != 0, may(R_OK) { granted |= NFS3AccessMask.read }
        if wanted & (NFS3AccessMask.modify | NFS3AccessMask.extend) != 0, may(W_OK) {
            granted |= NFS3AccessMask.modify | NFS3AccessMask.extend
        }
        if a.type == .directory {
            if wanted & NFS3AccessMask.lookup != 0, may(X_OK) { granted |= NFS3AccessMask.lookup }
            if wanted & NFS3AccessMask.delete != 0, may(W_OK | X_OK) { granted |= NFS3AccessMask.delete }
        } else if wanted & NFS3AccessMask.execute != 0, may(X_OK) {
            granted |= NFS3AccessMask.execute
        }
        if context.access.readOnly {
            granted &= ~(NFS3AccessMask.modify | NFS3AccessMask.extend | NFS3AccessMask.delete)
        }
        return NFS3AccessOkay(attributes: NFS3FileAttributes(a, fsid: export.store.exportID), access: granted & wanted)
    }
}
