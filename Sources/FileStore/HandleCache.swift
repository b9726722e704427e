import NIOConcurrencyHelpers

/// Resolved file ids, so a call on a known file finds it with one system call instead of
/// resolving its path from the export root (openat2) every time.
///
/// An entry holds where a file was found: a descriptor of its parent directory, its name
/// there, and its inode number as the check. Using an entry costs one fstatat of (parent,
/// name): if that is still the inode, the name still names the file; if not (renamed or
/// removed by someone other than this server), the store forgets the entry and asks the
/// identity index (`FileIndex`), which stays the source of truth. A directory's entry also
/// keeps an O_PATH descriptor of the directory itself, the parent of its children's entries;
/// a regular file's keeps the descriptors calls read and write through, one per caller
/// identity, so a stream of READs and WRITEs does not open the file for every call.
///
/// Sharded by file id, each shard with its own lock, so the thread pool's calls rarely wait
/// for one another. A shard holds at most `entries / shards` entries and evicts by CLOCK
/// (second chance); when the descriptors open for the cache pass `descriptors`, entries are
/// evicted from shard after shard until they are below it again. Evicting only forgets a
/// shortcut: a handle never goes stale by it.
final class HandleCache: Sendable {
    /// Where a file was found.
    struct Location: Sendable {
        var parent: FileDescriptor
        var name: [UInt8]
        var inode: UInt64
        /// `name` with a NUL after it, made once, so checking the place allocates nothing.
        var cName: [UInt8]

        init(parent: FileDescriptor, name: [UInt8], inode: UInt64) {
            self.parent = parent
            self.name = name
            self.inode = inode
            self.cName = name + [0]
        }
    }

    private struct Entry {
        var id: UInt64
        var location: Location
        /// A directory's own descriptor (O_PATH).
        var directory: FileDescriptor?
        /// A regular file's descriptors for I/O, by caller identity (see `ThreadIdentity`).
        var io: [(identity: UInt64, descriptor: FileDescriptor)] = []
        var referenced = true
    }

    /// One shard: entries in slots that CLOCK's hand sweeps, and the shard's counters.
    private struct Shard {
        var slots: [Entry?] = []
        var slotOf: [UInt64: Int] = [:]
        var free: [Int] = []
        var hand = 0
        /// Bumped by every invalidation, so a place learnt before it is not cached after it.
        var generation: UInt64 = 0
        var hits = 0
        var misses = 0
        var evictions = 0
        var invalidations = 0

        func entry(_ id: UInt64) -> Entry? { slotOf[id].flatMap { slots[$0] } }

        mutating func put(_ entry: Entry, capacity: Int) -> Entry? {
            let victim = free.isEmpty && slots.count >= capacity ? evictOne() : nil
            let slot: Int
            if let f = free.popLast() {
                slot = f
            } else {
                slot = slots.count
                slots.append(nil)
            }
            slots[slot] = entry
            slotOf[entry.id] = slot
            return victim
        }

        mutating func remove(_ id: UInt64) -> Entry? {
            guard let slot = slotOf.removeValue(forKey: id) else { return nil }
            defer { slots[slot] = nil; free.append(slot) }
            return slots[slot]
        }

        /// Second chance: an entry used since the hand last passed is spared once.
        mutating func evictOne() -> Entry? {
            guard !slotOf.isEmpty else { return nil }
            while true {
                let slot = hand
                hand = (hand + 1) % slots.count
                guard let e = slots[slot] else { continue }
                if e.referenced {
                    slots[slot]!.referenced = false
                    continue
                }
                evictions += 1
                return remove(e.id)
            }
        }
    }

    let limits: HandleCacheLimits
    let tally = DescriptorTally()
    private let shards: [NIOLockedValueBox<Shard>]
    private let shardShift: UInt64

    init(limits: HandleCacheLimits = HandleCacheLimits()) {
        precondition(limits.shards > 0 && limits.shards & (limits.shards - 1) == 0, "shards must be a power of two")
        self.limits = limits
        self.shards = (0..<limits.shards).map { _ in NIOLockedValueBox(Shard()) }
        self.shardShift = UInt64(64 - limits.shards.trailingZeroBitCount)
    }

    private var perShard: Int { max(1, limits.entries / shards.count) }

    /// Fibonacci hashing: consecutive ids (as the index hands them out) spread over the shards.
    private func shard(_ id: UInt64) -> Int {
        Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> shardShift)
    }

    /// A descriptor that counts towards the cache's bound.
    func adopt(_ fd: Int32, writable: Bool = false) -> FileDescriptor {
        FileDescriptor(fd: fd, writable: writable, tally: tally)
    }

    /// Where `id` was last found, counted as a hit; nil is a miss (unless the caller goes on
    /// to the slow way, which counts it).
    func location(_ id: UInt64, countingMiss: Bool = true) -> Location? {
        shards[shard(id)].withLockedValue { s in
            guard let slot = s.slotOf[id] else {
                if countingMiss { s.misses += 1 }
                return nil
            }
            s.slots[slot]!.referenced = true
            s.hits += 1
            return s.slots[slot]!.location
        }
    }

    /// Forgets a location that no longer held when it was checked: that lookup was a miss.
    func discard(_ id: UInt64) {
        let gone = shards[shard(id)].withLockedValue { s -> Entry? in
            guard let e = s.remove(id) else { return nil }
            s.hits -= 1
            s.misses += 1
            return e
        }
        withExtendedLifetime(gone) {}
    }

    /// To be taken before resolving `id` the slow way, and handed to `insert`.
    func stamp(_ id: UInt64) -> UInt64 {
        shards[shard(id)].withLockedValue { $0.generation }
    }

    /// Caches where `id` was found, unless it was invalidated since `stamp` was taken. The
    /// descriptors of an entry for the same inode are kept.
    func insert(_ id: UInt64, _ location: Location, stamp: UInt64) {
        let index = shard(id)
        let victim = shards[index].withLockedValue { s -> Entry? in
            guard s.generation == stamp else { return nil }
            if let slot = s.slotOf[id] {
                var e = s.slots[slot]!
                let old = e
                if e.location.inode != location.inode {
                    e.directory = nil
                    e.io = []
                }
                e.location = location
                e.referenced = true
                s.slots[slot] = e
                return old
            }
            return s.put(Entry(id: id, location: location), capacity: perShard)
        }
        withExtendedLifetime(victim) {}
        trimDescriptors(from: index)
    }

    /// The descriptor of directory `id` itself, if its entry has one.
    func directory(_ id: UInt64) -> FileDescriptor? {
        shards[shard(id)].withLockedValue { $0.entry(id)?.directory }
    }

    /// Keeps a directory's own descriptor with its entry (if the entry is still there and
    /// still the same inode; otherwise it closes when the caller lets it go).
    func attachDirectory(_ id: UInt64, _ descriptor: FileDescriptor, inode: UInt64) {
        let index = shard(id)
        shards[index].withLockedValue { s in
            guard let slot = s.slotOf[id], s.slots[slot]!.location.inode == inode, s.slots[slot]!.directory == nil else { return }
            s.slots[slot]!.directory = descriptor
        }
        trimDescriptors(from: index)
    }

    /// A descriptor of file `id` opened by `identity`, writable if asked.
    func ioDescriptor(_ id: UInt64, identity: UInt64, writable: Bool) -> FileDescriptor? {
        shards[shard(id)].withLockedValue { s in
            guard let d = s.entry(id)?.io.first(where: { $0.identity == identity })?.descriptor, d.writable || !writable else {
                return nil
            }
            return d
        }
    }

    /// Identities per file whose descriptors are kept (a file is rarely used by more at once).
    static let identitiesPerFile = 4

    /// Keeps a descriptor opened by `identity` with the entry of `id`, replacing that
    /// identity's previous one (a read-only descriptor is replaced by a writable one).
    func attachIO(_ id: UInt64, identity: UInt64, _ descriptor: FileDescriptor) {
        let index = shard(id)
        let replaced = shards[index].withLockedValue { s -> [(identity: UInt64, descriptor: FileDescriptor)] in
            guard let slot = s.slotOf[id] else { return [] }
            let old = s.slots[slot]!.io
            var io = old.filter { $0.identity != identity }
            if io.count >= Self.identitiesPerFile { io.removeFirst() }
            io.append((identity, descriptor))
            s.slots[slot]!.io = io
            return old
        }
        withExtendedLifetime(replaced) {}
        trimDescriptors(from: index)
    }

    /// Forgets `id` after a change to the namespace made it (or may have made it) wrong.
    func invalidate(_ id: UInt64) {
        let gone = shards[shard(id)].withLockedValue { s -> Entry? in
            s.generation &+= 1
            s.invalidations += 1
            return s.remove(id)
        }
        withExtendedLifetime(gone) {}
    }

    /// Forgets everything (after the identities of the whole tree were learnt again).
    func invalidateAll() {
        for shard in shards {
            let gone = shard.withLockedValue { s -> [Entry?] in
                s.generation &+= 1
                s.invalidations += s.slotOf.count
                defer { s.slots = []; s.slotOf = [:]; s.free = []; s.hand = 0 }
                return s.slots
            }
            withExtendedLifetime(gone) {}
        }
    }

    /// Evicts from shard after shard, starting after `start`, until the open descriptors are
    /// within the bound or nothing is left to evict. Descriptors close outside the locks.
    private func trimDescriptors(from start: Int) {
        var index = start
        var emptyInARow = 0
        while tally.value > limits.descriptors && emptyInARow < shards.count {
            index = (index + 1) % shards.count
            let victim = shards[index].withLockedValue { $0.evictOne() }
            emptyInARow = victim == nil ? emptyInARow + 1 : 0
            withExtendedLifetime(victim) {}
        }
    }

    var statistics: HandleCacheStatistics {
        var total = HandleCacheStatistics()
        for shard in shards {
            shard.withLockedValue { s in
                total.hits += s.hits
                total.misses += s.misses
                total.evictions += s.evictions
                total.invalidations += s.invalidations
                total.entries += s.slotOf.count
            }
        }
        total.descriptors = tally.value
        return total
    }
}

/// The bounds of a store's handle cache.
public struct HandleCacheLimits: Hashable, Sendable {
    /// Files whose place is cached.
    public var entries: Int
    /// Descriptors open for the cache: parent directories and files open for I/O.
    public var descriptors: Int
    /// Shards, each with its own lock (a power of two).
    public var shards: Int

    public init(entries: Int = 16_384, descriptors: Int = 2_048, shards: Int = 16) {
        self.entries = entries
        self.descriptors = descriptors
        self.shards = shards
    }
}

/// What the handle cache has done since the export was opened, for the operator.
public struct HandleCacheStatistics: Hashable, Sendable {
    /// Resolutions answered from the cache (the cached place still held).
    public var hits = 0
    /// Resolutions that went to the identity index and the file system.
    public var misses = 0
    /// Entries dropped to stay within the bounds.
    public var evictions = 0
    /// Entries dropped because this server changed the namespace.
    public var invalidations = 0
    public var entries = 0
    /// Descriptors open for the cache (including evicted ones calls still use).
    public var descriptors = 0

    public init() {}

    public static func + (a: Self, b: Self) -> Self {
        var s = a
        s.hits += b.hits
        s.misses += b.misses
        s.evictions += b.evictions
        s.invalidations += b.invalidations
        s.entries += b.entries
        s.descriptors += b.descriptors
        return s
    }
}
