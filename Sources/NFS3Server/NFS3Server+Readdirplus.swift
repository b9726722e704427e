import Glibc
import FileStore
import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.17. Both limits are honoured: `dirCount` for the entries' names and
    /// cookies, `maxCount` for the whole reply with attributes and handles. A directory listed
    /// again is answered from `listings` while nothing changed (see `DirectoryListingCache`).
    func readdirplus(_ call: NFS3ReaddirplusCall, context: NFS3CallContext) -> NFS3ReaddirplusReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, dir) = try resolveDirectory(call.directory)
            resolved = (export, dir)
            let store = export.store
            let key = DirectoryListingCache.Key(store: store.instance, directory: dir)
            // Taken before anything is read: a change that begins after it keeps nothing read.
            let stamp = store.treeStamp()
            // The listing is the caller's to read (r) and its attributes to get (x).
            let (a, mayList) = try store.withAccessCheck(dir) { a, may in (a, may(R_OK | X_OK)) }
            let dirAttributes = NFS3FileAttributes(a, fsid: store.exportID)
            let version = DirectoryListingCache.DirectoryVersion(dirAttributes)
            var page = ReaddirplusPage(call)
            let eof: Bool
            if mayList, let cached = listings.entries(key, store: store, version: version, after: call.cookie, { page.add($0) }) {
                eof = cached
            } else {
                page = ReaddirplusPage(call)
                eof = try store.readDirectory(dir, cookie: call.cookie, withAttributes: true) { entry, a in
                    page.add(NFS3ReaddirplusEntry(fileid: entry.fileID, name: entry.name, cookie: entry.cookie,
                                                  attributes: a.map { NFS3FileAttributes($0, fsid: store.exportID) },
                                                  handle: handle(export, entry.fileID)))
                }
                if mayList { listings.keep(key, store: store, stamp: stamp, version: version, at: call.cookie, page.entries, eof: eof) }
            }
            if page.entries.isEmpty && !eof { throw NFS3Status.toosmall }
            return NFS3ReaddirplusReply(result: .okay(NFS3ReaddirplusOkay(
                directoryAttributes: dirAttributes, cookieVerifier: Self.cookieVerifier(dirAttributes),
                entries: page.entries, eof: eof)))
        } catch {
            return NFS3ReaddirplusReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }
}

/// The entries of one READDIRPLUS reply, within the call's two limits.
struct ReaddirplusPage {
    private var maxBudget: Int
    private var dirBudget: Int
    private(set) var entries: [NFS3ReaddirplusEntry] = []

    init(_ call: NFS3ReaddirplusCall) {
        maxBudget = Int(call.maxCount) - NFS3ReaddirplusOkay.encodedSizeWithoutEntries(hasDirectoryAttributes: true)
        dirBudget = Int(call.dirCount)
    }

    /// Adds `entry` if it fits; false (and nothing added) when it does not.
    mutating func add(_ entry: NFS3ReaddirplusEntry) -> Bool {
        let size = NFS3ReaddirplusEntry.encodedSize(nameLength: entry.name.count, hasAttributes: entry.attributes != nil,
                                                    handleLength: entry.handle?.bytes.count)
        let dirSize = NFS3ReaddirplusEntry.dirCountSize(nameLength: entry.name.count)
        guard size <= maxBudget, dirSize <= dirBudget || entries.isEmpty else { return false }
        maxBudget -= size
        dirBudget -= dirSize
        entries.append(entry)
        return true
    }
}
