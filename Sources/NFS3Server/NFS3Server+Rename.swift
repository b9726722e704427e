import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.14, including over an existing name. Both directories get WCC data.
    /// The handle of the renamed file stays valid: the identity index follows it.
    func rename(_ call: NFS3RenameCall, context: NFS3CallContext) -> NFS3RenameReply {
        var toBefore: NFS3WCCAttributes?
        var toResolved: (NFS3Export, UInt64)?
        let (r, fromWCC) = changeDirectory(context, call.from.directory, committing: { toResolved.map { [$0.1] } ?? [] }) { export, fromDir in
            let (toExport, toDir) = try resolveDirectory(call.to.directory)
            toResolved = (toExport, toDir)
            guard toExport.store.exportID == export.store.exportID else { throw NFS3Status.xdev }
            toBefore = preOp(toExport, toDir)
            try export.store.rename(fromDir, name: call.from.name, to: toDir, name: call.to.name)
        }
        let toWCC = NFS3WCCData(before: toBefore, after: toResolved.flatMap { postOp($0.0, $0.1) })
        let both = NFS3RenameWCC(fromDirectoryWCC: fromWCC, toDirectoryWCC: toWCC)
        switch r {
        case .success: return NFS3RenameReply(result: .okay(both))
        case .failure(let s): return NFS3RenameReply(result: .fail(s, both))
        }
    }
}
