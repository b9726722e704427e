import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.15.
    func link(_ call: NFS3LinkCall, context: NFS3CallContext) -> NFS3LinkReply {
        var file: (NFS3Export, UInt64)?
        let (r, wcc) = changeDirectory(context, call.link.directory, committing: { file.map { [$0.1] } ?? [] }) { export, dir in
            let (fileExport, id) = try resolve(call.file)
            file = (fileExport, id)
            guard fileExport.store.exportID == export.store.exportID else { throw NFS3Status.xdev }
            try export.store.link(id, to: dir, name: call.link.name)
        }
        let both = NFS3LinkWCC(fileAttributes: file.flatMap { postOp($0.0, $0.1) }, linkDirectoryWCC: wcc)
        switch r {
        case .success: return NFS3LinkReply(result: .okay(both))
        case .failure(let s): return NFS3LinkReply(result: .fail(s, both))
        }
    }
}
