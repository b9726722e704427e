import FileStore
import NFS3
import NIOConcurrencyHelpers

/// Directory listings that READDIRPLUS has read, with each entry's attributes and handle, so
/// that a directory listed again is answered from memory rather than with a stat of every
/// entry (NFS-Ganesha's metadata cache does the same; a 10,000-entry directory is otherwise
/// 10,000 path lookups a listing).
///
/// A listing is only answered from while it is certainly what the tree holds:
/// - no change through the export's store has begun since it was read (`TreeStamp`): every
///   change a client makes (a WRITE, a SETATTR, a CREATE anywhere in the export) drops the
///   export's listings;
/// - the directory's mtime, ctime and size are what they were (one fstat per call, which the
///   reply's attributes need anyway): what others do to the directory itself, behind the
///   server's back, shows at once;
/// - it is at most `Limits.maxAge` old: what others do to an entry's attributes behind the
///   server's back (the instance store is the server's alone) shows within that time, as an
///   NFS client's own attribute cache would hide it for longer (acregmin, 3 s).
///
/// A listing grows page by page as the normal path reads the directory from cookie 0, and is
/// used once it covers the cookie asked for. Memory: at most `Limits.maxEntries` entries in
/// all (about 250 bytes each with a short name), the least recently used listing going first.
final class DirectoryListingCache: Sendable {
    struct Limits: Sendable {
        var maxEntries = 100_000
        var maxAge: Duration = .seconds(2)
    }

    struct Key: Hashable {
        /// `FileStore.instance`: a store opened again (a takeover's rebuild) starts afresh.
        let store: UInt64
        let directory: UInt64
    }

    /// What a listing was read against: the directory's attributes that change with it.
    struct DirectoryVersion: Equatable {
        let mtime: NFS3Time
        let ctime: NFS3Time
        let size: UInt64

        init(_ a: NFS3FileAttributes) {
            (mtime, ctime, size) = (a.mtime, a.ctime, a.size)
        }
    }

    private struct Listing {
        let stamp: TreeStamp
        let version: DirectoryVersion
        let read: ContinuousClock.Instant
        var entries: [NFS3ReaddirplusEntry] = []
        /// The index of the entry after the one with this cookie.
        var positions: [UInt64: Int] = [:]
        var complete = false
        var used: UInt64 = 0
    }

    private struct State {
        var listings: [Key: Listing] = [:]
        var entries = 0
        var clock: UInt64 = 0
    }

    let limits: Limits
    private let state = NIOLockedValueBox(State())

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// The entries after `cookie` from a listing that is still what the tree holds, fed to
    /// `take` until it returns false; whether the listing's end was reached. Nil when no such
    /// listing covers `cookie`.
    func entries(_ key: Key, store: FileStore, version: DirectoryVersion, after cookie: UInt64,
                 _ take: (NFS3ReaddirplusEntry) -> Bool) -> Bool? {
        state.withLockedValue { s in
            guard var listing = s.listings[key] else { return nil }
            guard store.isUnchanged(since: listing.stamp), listing.version == version,
                  ContinuousClock.now - listing.read <= limits.maxAge else {
                s.entries -= listing.entries.count
                s.listings[key] = nil
                return nil
            }
            guard let start = cookie == 0 ? 0 : listing.positions[cookie],
                  start < listing.entries.count || listing.complete else { return nil }
            s.clock += 1
            listing.used = s.clock
            var i = start
            while i < listing.entries.count, take(listing.entries[i]) { i += 1 }
            s.listings[key] = listing
            return i == listing.entries.count && listing.complete
        }
    }

    /// Keeps a page the normal path read, at `cookie`, after taking `stamp` (before it read
    /// the directory's attributes): the start of a new listing at cookie 0, else the next page
    /// of the listing that ends at `cookie`. Nothing is kept if anything changed meanwhile.
    func keep(_ key: Key, store: FileStore, stamp: TreeStamp?, version: DirectoryVersion, at cookie: UInt64,
              _ page: [NFS3ReaddirplusEntry], eof: Bool) {
        guard let stamp, store.isUnchanged(since: stamp), page.count < limits.maxEntries else { return }
        state.withLockedValue { s in
            var listing: Listing
            if cookie == 0 {
                listing = Listing(stamp: stamp, version: version, read: .now)
            } else {
                guard let existing = s.listings[key], existing.stamp == stamp, existing.version == version,
                      !existing.complete, existing.entries.last?.cookie == cookie else { return }
                listing = existing
            }
            s.entries -= s.listings[key]?.entries.count ?? 0
            for entry in page {
                listing.entries.append(entry)
                listing.positions[entry.cookie] = listing.entries.count
            }
            listing.complete = eof
            s.clock += 1
            listing.used = s.clock
            s.entries += listing.entries.count
            s.listings[key] = listing
            // Listings of a tree that changed since are of no use any more; then the least
            // recently used go while there are too many entries.
            for (k, l) in s.listings where k != key && k.store == key.store && l.stamp != stamp {
                s.entries -= l.entries.count
                s.listings[k] = nil
            }
            while s.entries > limits.maxEntries,
                  let (k, l) = s.listings.min(by: { $0.value.used < $1.value.used }) {
                s.entries -= l.entries.count
                s.listings[k] = nil
            }
        }
    }
}
