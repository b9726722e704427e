import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.13.
    func rmdir(_ call: NFS3RmdirCall, context: NFS3CallContext) -> NFS3RmdirReply {
        let (r, wcc) = changeDirectory(context, call.object.directory) { export, dir in
            try export.store.removeDirectory(dir, name: call.object.name)
        }
        switch r {
        case .success: return NFS3RmdirReply(result: .okay(wcc))
        case .failure(let s): return NFS3RmdirReply(result: .fail(s, wcc))
        }
    }
}
