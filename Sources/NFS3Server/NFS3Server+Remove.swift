import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.12.
    func remove(_ call: NFS3RemoveCall, context: NFS3CallContext) -> NFS3RemoveReply {
        let (r, wcc) = changeDirectory(context, call.object.directory) { export, dir in
            try export.store.remove(dir, name: call.object.name)
        }
        switch r {
        case .success: return NFS3RemoveReply(result: .okay(wcc))
        case .failure(let s): return NFS3RemoveReply(result: .fail(s, wcc))
        }
    }
}
