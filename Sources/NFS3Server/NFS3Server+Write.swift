import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.7. UNSTABLE is acknowledged from the page cache; DATA_SYNC and FILE_SYNC
    /// only after fdatasync/fsync. A failed write or sync replaces the write verifier.
    func write(_ call: NFS3WriteCall, context: NFS3CallContext) -> NFS3WriteReply {
        var resolved: (NFS3Export, UInt64)?
        var before: NFS3WCCAttributes?
        do {
            let (export, id) = try resolve(call.file)
            resolved = (export, id)
            before = (try? export.store.openFileAttributes(id)).map(NFS3WCCAttributes.init)
            try requireWritable(context)
            guard call.data.readableBytes >= Int(call.count) else { throw NFS3Status.inval }
            let data = call.data.getSlice(at: call.data.readerIndex, length: Int(call.count))!
            let durability: WriteDurability = switch call.stable {
            case .unstable: .unstable
            case .dataSync: .data
            case .fileSync: .file
            }
            let written: Int
            do {
                written = try export.store.write(id, offset: call.offset, data: data, durability: durability)
            } catch let e as StoreError where e.code == .fileTooBig {
                // Refused before anything was written: nothing to send again.
                throw e
            } catch {
                verifier.reset()
                logger.warning("write failed; write verifier replaced", metadata: ["nfs.fileid": "\(id)", "nfs.error": "\(error)"])
                throw error
            }
            // With a journal, DATA_SYNC and FILE_SYNC are stable once the journal is (waited for
            // here, or the reply held for it; a failure replaces the verifier there).
            if call.stable != .unstable { try makeDurable(export, context, force: true) }
            let after = (try? export.store.openFileAttributes(id)).map { NFS3FileAttributes($0, fsid: export.store.exportID) }
            return NFS3WriteReply(result: .okay(NFS3WriteOkay(
                wcc: NFS3WCCData(before: before, after: after), count: UInt32(written),
                committed: call.stable, verifier: verifier.current)))
        } catch {
            let after = resolved.flatMap { postOp($0.0, $0.1) }
            return NFS3WriteReply(result: .fail(NFS3Status(error), NFS3WCCData(before: before, after: after)))
        }
    }
}
