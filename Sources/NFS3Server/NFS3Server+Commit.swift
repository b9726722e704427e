import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.21. fsync of the whole file (a range commit is allowed to do more). A
    /// failure replaces the write verifier, so clients resend rather than lose data silently.
    func commit(_ call: NFS3CommitCall, context: NFS3CallContext) -> NFS3CommitReply {
        var resolved: (NFS3Export, UInt64)?
        var before: NFS3WCCAttributes?
        do {
            let (export, id) = try resolve(call.file)
            resolved = (export, id)
            before = preOp(export, id)
            do {
                // With a journal: the data goes into it here, and the reply waits for its fsync.
                try export.store.commit(id, waitForJournal: context.durability == nil)
                try makeDurable(export, context, force: true)
            } catch {
                verifier.reset()
                logger.warning("commit failed; write verifier replaced", metadata: ["nfs.fileid": "\(id)", "nfs.error": "\(error)"])
                throw error
            }
            return NFS3CommitReply(result: .okay(NFS3CommitOkay(
                wcc: NFS3WCCData(before: before, after: postOp(export, id)), verifier: verifier.current)))
        } catch {
            let after = resolved.flatMap { postOp($0.0, $0.1) }
            return NFS3CommitReply(result: .fail(NFS3Status(error), NFS3WCCData(before: before, after: after)))
        }
    }
}
