import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.10. Attributes after creation are applied to the link itself, never to
    /// what it points at.
    func symlink(_ call: NFS3SymlinkCall, context: NFS3CallContext) -> NFS3SymlinkReply {
        let r = changeDirectory(context, call.where.directory, committing: { [$0.fileID] }) { export, dir -> FileAttributes in
            let a = try export.store.makeSymlink(dir, name: call.where.name, target: call.target)
            return try applyRemaining(call.attributes, to: a, in: export)
        }
        guard let export = export(of: call.where.directory) else { return NFS3SymlinkReply(result: .fail(.badhandle, r.1)) }
        return NFS3SymlinkReply(result: newObjectResult(export, r))
    }
}
