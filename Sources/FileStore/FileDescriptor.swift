import Glibc
import NIOConcurrencyHelpers

/// An open file descriptor, closed when the last reference goes away, so a descriptor that
/// the cache evicts stays valid for the calls still using it.
final class FileDescriptor: Sendable {
    let fd: Int32
    let writable: Bool

    init(fd: Int32, writable: Bool) {
        self.fd = fd
        self.writable = writable
    }

    deinit { close(fd) }
}

/// Open descriptors of regular files by file id, so a stream of READs and WRITEs does not
/// open and close the file for every call. Bounded; the least recently used entry goes first.
final class DescriptorCache: Sendable {
    private struct Entry {
        var descriptor: FileDescriptor
        var lastUse: UInt64
    }
    /// A descriptor is cached for a file and the identity that opened it.
    struct Key: Hashable {
        var fileID: UInt64
        var identity: UInt64
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var clock: UInt64 = 0
    }
    private let state = NIOLockedValueBox(State())
    let capacity: Int

    init(capacity: Int = 512) {
        self.capacity = capacity
    }

    func get(_ id: Key, writable: Bool) -> FileDescriptor? {
        state.withLockedValue { s in
            guard var e = s.entries[id], e.descriptor.writable || !writable else { return nil }
            s.clock += 1
            e.lastUse = s.clock
            s.entries[id] = e
            return e.descriptor
        }
    }

    func put(_ id: Key, _ descriptor: FileDescriptor) {
        state.withLockedValue { s in
            s.clock += 1
            s.entries[id] = Entry(descriptor: descriptor, lastUse: s.clock)
            if s.entries.count > capacity {
                // Evict the oldest eighth in one pass to keep eviction amortised.
                let victims = s.entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, capacity / 8))
                for (k, _) in victims { s.entries[k] = nil }
            }
        }
    }

    /// Drops every descriptor of a file.
    func remove(_ fileID: UInt64) {
        state.withLockedValue { s in
            for k in s.entries.keys where k.fileID == fileID { s.entries[k] = nil }
        }
    }
}
