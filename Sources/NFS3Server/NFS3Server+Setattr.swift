import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.2. The guard compares the ctime the client last saw with the current one
    /// and refuses with NFS3ERR_NOT_SYNC when they differ.
    func setattr(_ call: NFS3SetattrCall, context: NFS3CallContext) -> NFS3SetattrReply {
        var export: NFS3Export?
        var id: UInt64 = 0
        var before: NFS3WCCAttributes?
        do {
            let resolved = try resolve(call.object)
            (export, id) = resolved
            let current = try attributes(resolved.0, id)
            before = NFS3WCCAttributes(size: current.size, mtime: current.mtime, ctime: current.ctime)
            try requireWritable(context)
            if let guardCtime = call.guardCtime, guardCtime != current.ctime { throw NFS3Status.notSync }
            try resolved.0.store.setAttributes(id, AttributeChanges(call.newAttributes))
            try makeDurable(resolved.0, context, committing: [id])
            return NFS3SetattrReply(result: .okay(NFS3WCCData(before: before, after: postOp(resolved.0, id))))
        } catch {
            let after = export.flatMap { postOp($0, id) }
            return NFS3SetattrReply(result: .fail(NFS3Status(error), NFS3WCCData(before: before, after: after)))
        }
    }
}

extension AttributeChanges {
    init(_ s: NFS3SetAttributes) {
        func time(_ t: NFS3SetTime) -> TimeChange {
            switch t {
            case .dontChange: return .unchanged
            case .serverTime: return .now
            case .clientTime(let c): return .set(FileTime(c))
            }
        }
        self.init(mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: time(s.atime), mtime: time(s.mtime))
    }
}
