import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.11: FIFOs and sockets for anyone who may write the directory, devices for
    /// root only, NFS3ERR_BADTYPE for anything else.
    func mknod(_ call: NFS3MknodCall, context: NFS3CallContext) -> NFS3MknodReply {
        let r = changeDirectory(context, call.where.directory, committing: { [$0.fileID] }) { export, dir -> FileAttributes in
            let type: SpecialFileType
            let s: NFS3SetAttributes
            switch call.what {
            case .characterDevice(let a, let spec):
                guard context.identity.uid == 0 else { throw NFS3Status.perm }
                type = .characterDevice(major: spec.major, minor: spec.minor); s = a
            case .blockDevice(let a, let spec):
                guard context.identity.uid == 0 else { throw NFS3Status.perm }
                type = .blockDevice(major: spec.major, minor: spec.minor); s = a
            case .socket(let a): type = .socket; s = a
            case .fifo(let a): type = .fifo; s = a
            default: throw NFS3Status.badtype
            }
            let a = try export.store.makeNode(dir, name: call.where.name, type: type, mode: s.mode ?? 0o644)
            return try applyRemaining(s, to: a, in: export)
        }
        guard let export = export(of: call.where.directory) else { return NFS3MknodReply(result: .fail(.badhandle, r.1)) }
        return NFS3MknodReply(result: newObjectResult(export, r))
    }
}
