import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.16. Cookies are the file system's own directory offsets (d_off), so a
    /// listing continues correctly while the directory changes, and each call costs time in
    /// proportion to what it returns: a whole listing is linear in the directory's size.
    /// The cookie verifier is issued (from the directory's mtime) but not enforced, as knfsd
    /// does: enforcing it makes the Linux client loop when a directory changes mid-listing.
    func readdir(_ call: NFS3ReaddirCall, context: NFS3CallContext) -> NFS3ReaddirReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, dir) = try resolveDirectory(call.directory)
            resolved = (export, dir)
            let dirAttributes = try attributes(export, dir)
            var budget = Int(call.count) - NFS3ReaddirOkay.encodedSizeWithoutEntries(hasDirectoryAttributes: true)
            var entries: [NFS3ReaddirEntry] = []
            let eof = try export.store.readDirectory(dir, cookie: call.cookie, withAttributes: false) { entry, _ in
                let size = NFS3ReaddirEntry.encodedSize(nameLength: entry.name.count)
                guard size <= budget else { return false }
                budget -= size
                entries.append(NFS3ReaddirEntry(fileid: entry.fileID, name: entry.name, cookie: entry.cookie))
                return true
            }
            if entries.isEmpty && !eof { throw NFS3Status.toosmall }
            return NFS3ReaddirReply(result: .okay(NFS3ReaddirOkay(
                directoryAttributes: dirAttributes, cookieVerifier: Self.cookieVerifier(dirAttributes),
                entries: entries, eof: eof)))
        } catch {
            return NFS3ReaddirReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }

    static func cookieVerifier(_ a: NFS3FileAttributes) -> NFS3Verifier {
        NFS3Verifier(UInt64(a.mtime.seconds) << 32 | UInt64(a.mtime.nanoseconds))
    }
}
