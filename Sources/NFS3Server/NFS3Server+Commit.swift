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
                try export.store.commit(id)
            } catch {
                verifier.reset()
                logger.warning("commit failed; write verifier replaced", metadata: ["nfs.fileid": "\(id)", "nfs.error": "\(error)"])
                throw error
            }
            // With a journal the data went into it above; stable once the journal's fsync covers
            // it (waited for here, or the reply held for it; a failure replaces the verifier there).
            try makeDurable(export, context, force: true)
            return NFS3CommitReply(result: .okay(NFS3CommitOkay(
                wcc: NFS3WCCData(before: before, after: postOp(export, id)), verifier: verifier.current)))
        } catch {
            let after = resolved.flatMap { postOp($0.0, $0.1) }
            return NFS3CommitReply(result: .fail(NFS3Status(error), NFS3WCCData(before: before, after: after)))
        }
    }
}
