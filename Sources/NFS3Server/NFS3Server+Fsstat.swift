import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.18, from statvfs(3) of the export's file system.
    func fsstat(_ call: NFS3FsstatCall, context: NFS3CallContext) -> NFS3FsstatReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, id) = try resolve(call.fsRoot)
            resolved = (export, id)
            let s = try export.store.statistics()
            return NFS3FsstatReply(result: .okay(NFS3FsstatOkay(
                attributes: postOp(export, id), totalBytes: s.totalBytes, freeBytes: s.freeBytes,
                availableBytes: s.availableBytes, totalFiles: s.totalFiles, freeFiles: s.freeFiles,
                availableFiles: s.availableFiles, invarsec: 0)))
        } catch {
            return NFS3FsstatReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }
}
