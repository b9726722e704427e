import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.9.
    func mkdir(_ call: NFS3MkdirCall, context: NFS3CallContext) -> NFS3MkdirReply {
        let r = changeDirectory(context, call.where.directory, committing: { [$0.fileID] }) { export, dir -> FileAttributes in
            let a = try export.store.makeDirectory(dir, name: call.where.name, mode: call.attributes.mode ?? 0o755)
            return try applyRemaining(call.attributes, to: a, in: export)
        }
        guard let export = export(of: call.where.directory) else { return NFS3MkdirReply(result: .fail(.badhandle, r.1)) }
        return NFS3MkdirReply(result: newObjectResult(export, r))
    }
}
