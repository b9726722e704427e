import NIOConcurrencyHelpers

/// Who holds a lock, as the Network Lock Manager names it: the client host (`caller_name`, and
/// the network address its calls come from, so two clients that call themselves by one name
/// stay apart), the owner handle (`oh`, opaque) and the process on the client (`svid`). Two
/// requests of the same owner never conflict with each other.
package struct LockOwner: Hashable, Sendable, CustomStringConvertible {
    package var host: String
    package var address: String
    package var handle: [UInt8]
    package var process: Int32

    package init(host: String, address: String = "", handle: [UInt8], process: Int32) {
        self.host = host
        self.address = address
        self.handle = handle
        self.process = process
    }

    package var description: String { "\(host)\(address.isEmpty ? "" : " (\(address))") pid \(process)" }
}

/// A byte range of a file: [start, end), with `end` = UInt64.max for "to the end of the file,
/// however far it grows" (a length of 0 in NLM and in fcntl).
package struct LockRange: Hashable, Sendable, CustomStringConvertible {
    package var start: UInt64
    package var end: UInt64

    package init(start: UInt64, end: UInt64) {
        self.start = start
        self.end = max(start, end)
    }

    /// NLM's offset and length: length 0 reaches the end of the file, and a range that would
    /// pass the largest offset stops there.
    package init(offset: UInt64, length: UInt64) {
        let (end, overflow) = offset.addingReportingOverflow(length)
        self.init(start: offset, end: length == 0 || overflow ? .max : end)
    }

    package var isEmpty: Bool { start >= end }
    package var length: UInt64 { end == .max ? 0 : end - start }

    func overlaps(_ other: LockRange) -> Bool { start < other.end && other.start < end }
    /// Overlaps or touches: one can be merged with the other.
    func meets(_ other: LockRange) -> Bool { start <= other.end && other.start <= end }

    package var description: String { end == .max ? "\(start)-EOF" : "\(start)-\(end - 1)" }
}

/// One lock held.
package struct FileLock: Hashable, Sendable, CustomStringConvertible {
    package var owner: LockOwner
    package var exclusive: Bool
    package var range: LockRange

    package init(owner: LockOwner, exclusive: Bool, range: LockRange) {
        self.owner = owner
        self.exclusive = exclusive
        self.range = range
    }

    package var description: String { "\(exclusive ? "write" : "read") lock \(range) of \(owner)" }
}

/// The byte-range locks of every file, with POSIX semantics (what fcntl gives local
/// processes): an owner's new lock replaces its own locks where they overlap (an upgrade or a
/// downgrade, splitting them), merges with its own locks of the same kind that overlap or
/// touch, and conflicts only with other owners' locks where one of the two is exclusive.
/// Files are named by a key that stays the same across renames and hard links (the server's
/// persistent file id).
package final class LockTable<Key: Hashable & Sendable>: Sendable {
    private let state = NIOLockedValueBox(State())

    private struct State {
        var files: [Key: [FileLock]] = [:]
        /// Locks over all files.
        var count = 0

        /// Replaces a file's locks, keeping `count` right.
        mutating func set(_ key: Key, _ locks: [FileLock]) {
            count += locks.count - (files[key]?.count ?? 0)
            files[key] = locks.isEmpty ? nil : locks
        }
    }

    package init() {}

    /// The lock of another owner that a lock of this kind over `range` would conflict with,
    /// if any (NLM TEST, fcntl F_GETLK).
    package func conflict(_ key: Key, owner: LockOwner, exclusive: Bool, range: LockRange) -> FileLock? {
        state.withLockedValue { Self.conflict(in: $0.files[key] ?? [], owner: owner, exclusive: exclusive, range: range) }
    }

    /// Takes the lock, or returns the lock that is in the way (and changes nothing).
    package func lock(_ key: Key, owner: LockOwner, exclusive: Bool, range: LockRange) -> FileLock? {
        guard !range.isEmpty else { return nil }
        return state.withLockedValue { s in
            var locks = s.files[key] ?? []
            if let holder = Self.conflict(in: locks, owner: owner, exclusive: exclusive, range: range) { return holder }
            Self.remove(owner, range, from: &locks)
            var merged = range
            locks.removeAll { l in
                guard l.owner == owner, l.exclusive == exclusive, l.range.meets(merged) else { return false }
                merged = LockRange(start: min(l.range.start, merged.start), end: max(l.range.end, merged.end))
                return true
            }
            locks.append(FileLock(owner: owner, exclusive: exclusive, range: merged))
            s.set(key, locks)
            return nil
        }
    }

    /// Releases what `owner` holds within `range` (the rest of its locks stay, split if need be).
    package func unlock(_ key: Key, owner: LockOwner, range: LockRange) {
        state.withLockedValue { s in
            guard var locks = s.files[key] else { return }
            Self.remove(owner, range, from: &locks)
            s.set(key, locks)
        }
    }

    /// Releases every lock of the owners `matching` (NLM FREE_ALL, a client that rebooted);
    /// returns the files that had such locks.
    @discardableResult
    package func releaseAll(matching: (LockOwner) -> Bool) -> Set<Key> {
        state.withLockedValue { s in
            var released: Set<Key> = []
            for (key, locks) in s.files {
                let kept = locks.filter { !matching($0.owner) }
                guard kept.count != locks.count else { continue }
                released.insert(key)
                s.set(key, kept)
            }
            return released
        }
    }

    /// The locks held on a file, in no particular order.
    package func locks(_ key: Key) -> [FileLock] { state.withLockedValue { $0.files[key] ?? [] } }

    /// Every lock held, of every file.
    package var allLocks: [FileLock] { state.withLockedValue { Array($0.files.values.joined()) } }

    /// How many locks are held over all files.
    package var count: Int { state.withLockedValue { $0.count } }

    private static func conflict(in locks: [FileLock], owner: LockOwner, exclusive: Bool, range: LockRange) -> FileLock? {
        locks.first { $0.owner != owner && ($0.exclusive || exclusive) && $0.range.overlaps(range) }
    }

    /// Cuts `range` out of `owner`'s locks.
    private static func remove(_ owner: LockOwner, _ range: LockRange, from locks: inout [FileLock]) {
        var kept: [FileLock] = []
        for l in locks {
            guard l.owner == owner, l.range.overlaps(range) else {
                kept.append(l)
                continue
            }
            if l.range.start < range.start {
                kept.append(FileLock(owner: owner, exclusive: l.exclusive, range: LockRange(start: l.range.start, end: range.start)))
            }
            if range.end < l.range.end {
                kept.append(FileLock(owner: owner, exclusive: l.exclusive, range: LockRange(start: range.end, end: l.range.end)))
            }
        }
        locks = kept
    }
}
