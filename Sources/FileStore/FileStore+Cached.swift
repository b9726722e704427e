import CNFSShims
import Glibc
import NIOCore

/// Answers from what the handle cache holds, for calls answered on the event loop: a place the
/// cache knows, checked with one fstatat, and nothing else. Nothing is resolved, searched
/// for, opened or written; nil means "ask the blocking way" (which also reports any error).
extension FileStore {
    /// Runs `body` like `withLocation` when the cache knows the place of `id` and it still holds.
    func withCachedLocation<T>(_ id: UInt64, _ body: (Int32, [UInt8], stat) throws -> T) rethrows -> T? {
        if id == Self.rootID {
            var st = stat()
            guard fstat(rootFD, &st) == 0 else { return nil }
            return try body(rootFD, [46], st)
        }
        guard let location = cache.location(id, countingMiss: false), let st = Self.currentStat(location) else { return nil }
        return try withExtendedLifetime(location.parent) { try body(location.parent.fd, location.name, st) }
    }

    /// `attributes(of:)` from the cache.
    public func cachedAttributes(of id: UInt64) -> FileAttributes? {
        (try? withCachedLocation(id) { try attributes($2, id: id) }) ?? nil
    }

    /// `withAccessCheck` from the cache.
    public func cachedAccessCheck<T>(_ id: UInt64, _ decide: (FileAttributes, (Int32) -> Bool) throws -> T) -> T? {
        (try? withCachedLocation(id) { try accessCheck($0, $1, $2, id: id, decide) }) ?? nil
    }

    /// `lookup` from the cache: a directory whose place and descriptor the cache holds, and a
    /// child the identity index already knows under this name.
    public func cachedLookup(_ dirID: UInt64, name: [UInt8]) -> FileAttributes? {
        guard !Self.isDot(name), !Self.isDotDot(name), (try? Self.validate(name: name)) != nil,
              withCachedLocation(dirID, { $2.st_mode & S_IFMT == S_IFDIR }) == true else { return nil }
        let directory = dirID == Self.rootID ? rootDirectory : cache.directory(dirID)
        guard let directory, let st = withExtendedLifetime(directory, { statChild(directory.fd, name) }),
              let id = index.id(ifPlaced: UInt64(st.st_ino), parent: dirID, name: name) else { return nil }
        return try? attributes(st, id: id)
    }

    /// `read` from the caches: a descriptor the handle cache holds for this caller and data the
    /// page cache holds (preadv2 with RWF_NOWAIT fails rather than wait for the disk). A short
    /// read that is not the end of the file is left to `read`.
    public func cachedRead(_ id: UInt64, offset: UInt64, count: Int, allocator: ByteBufferAllocator,
                           caller: CallerIdentity? = nil) -> (data: ByteBuffer, eof: Bool, attributes: FileAttributes)?
    {
        guard offset <= Self.maxOffset - UInt64(count),
              let d = cache.ioDescriptor(id, identity: ThreadIdentity.key(for: caller), writable: false)
        else { return nil }
        return withExtendedLifetime(d) {
            var buffer = allocator.buffer(capacity: count + 3)
            var failed = false
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { p in
                let n = cnfs_pread_nowait(d.fd, p.baseAddress, count, off_t(offset))
                failed = n < 0
                return max(0, n)
            }
            guard !failed, let result = try? readResult(d, id, offset: offset, data: buffer),
                  buffer.readableBytes == count || result.eof else { return nil }
            return result
        }
    }
}
