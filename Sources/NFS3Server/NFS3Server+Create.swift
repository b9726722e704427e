import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.8: UNCHECKED, GUARDED and EXCLUSIVE. The exclusive verifier is stored in
    /// the new file's atime and mtime, so a retransmitted create finds its own file and succeeds.
    func create(_ call: NFS3CreateCall, context: NFS3CallContext) -> NFS3CreateReply {
        let r = changeDirectory(context, call.where.directory, committing: { [$0.fileID] }) { export, dir -> FileAttributes in
            switch call.how {
            case .unchecked(let s), .guarded(let s):
                let mode: CreateMode
                if case .guarded = call.how { mode = .guarded } else { mode = .unchecked }
                let a = try export.store.create(dir, name: call.where.name, mode: s.mode ?? 0o644, how: mode)
                return try applyRemaining(s, to: a, in: export)
            case .exclusive(let v):
                return try export.store.create(dir, name: call.where.name, mode: 0o644, how: .exclusive(v.value))
            }
        }
        guard let export = export(of: call.where.directory) else { return NFS3CreateReply(result: .fail(NFS3Status.badhandle, r.1)) }
        return NFS3CreateReply(result: newObjectResult(export, r))
    }
}
