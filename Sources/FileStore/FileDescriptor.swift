import Glibc
import NIOConcurrencyHelpers

/// An open file descriptor, closed when the last reference goes away, so a descriptor that
/// the handle cache evicts stays valid for the calls still using it.
final class FileDescriptor: Sendable {
    let fd: Int32
    let writable: Bool
    /// The count of open descriptors this one is part of (the cache's bound), if any.
    private let tally: DescriptorTally?

    init(fd: Int32, writable: Bool, tally: DescriptorTally? = nil) {
        self.fd = fd
        self.writable = writable
        self.tally = tally
        tally?.opened()
    }

    deinit {
        close(fd)
        tally?.closed()
    }
}

/// How many descriptors a cache has open, counted where they are really opened and closed:
/// an evicted descriptor still in use by a call counts until that call lets it go.
/// (Opening and closing are rare next to the calls that use a descriptor: a lock is enough.)
final class DescriptorTally: Sendable {
    private let count = NIOLockedValueBox(0)

    var value: Int { count.withLockedValue { $0 } }

    func opened() { count.withLockedValue { $0 += 1 } }

    func closed() { count.withLockedValue { $0 -= 1 } }
}
