import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.17. Both limits are honoured: `dirCount` for the entries' names and
    /// cookies, `maxCount` for the whole reply with attributes and handles.
    func readdirplus(_ call: NFS3ReaddirplusCall, context: NFS3CallContext) -> NFS3ReaddirplusReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, dir) = try resolveDirectory(call.directory)
            resolved = (export, dir)
            let dirAttributes = try attributes(export, dir)
            var maxBudget = Int(call.maxCount) - NFS3ReaddirplusOkay.encodedSizeWithoutEntries(hasDirectoryAttributes: true)
            var dirBudget = Int(call.dirCount)
            var entries: [NFS3ReaddirplusEntry] = []
            let fsid = export.store.exportID
            let eof = try export.store.readDirectory(dir, cookie: call.cookie, withAttributes: true) { entry, a in
                let fh = handle(export, entry.fileID)
                let size = NFS3ReaddirplusEntry.encodedSize(nameLength: entry.name.count, hasAttributes: a != nil,
                                                            handleLength: fh.bytes.count)
                let dirSize = NFS3ReaddirplusEntry.dirCountSize(nameLength: entry.name.count)
                guard size <= maxBudget, dirSize <= dirBudget || entries.isEmpty else { return false }
                maxBudget -= size
                dirBudget -= dirSize
                entries.append(NFS3ReaddirplusEntry(fileid: entry.fileID, name: entry.name, cookie: entry.cookie,
                                                    attributes: a.map { NFS3FileAttributes($0, fsid: fsid) }, handle: fh))
                return true
            }
            if entries.isEmpty && !eof { throw NFS3Status.toosmall }
            return NFS3ReaddirplusReply(result: .okay(NFS3ReaddirplusOkay(
                directoryAttributes: dirAttributes, cookieVerifier: Self.cookieVerifier(dirAttributes),
                entries: entries, eof: eof)))
        } catch {
            return NFS3ReaddirplusReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }
}
