import CNFSShims
import Glibc
import NIOCore

/// How durable a write must be before it returns (NFS stable_how without the wire).
public enum WriteDurability: Sendable {
    /// Page cache only; a later `commit` makes it stable.
    case unstable
    /// Data and what is needed to read it back (fdatasync).
    case data
    /// Data and all metadata (fsync).
    case file
}

extension FileStore {
    /// The largest offset (and size) a file can have: off_t is signed.
    static let maxOffset = UInt64(Int64.max)

    /// A cached descriptor for reading (and, if asked, writing) a regular file, opened by the
    /// identity of the current call, so the kernel checked that caller's permissions.
    ///
    /// The owner of a file may read and write it whatever its mode says (knfsd's owner
    /// override): a local process that creates a file with mode 0444 may still write through the
    /// descriptor it got, and an NFS client expects the same of its WRITEs.
    /// A descriptor of regular file `id` for I/O by `caller` (nil: the identity this thread
    /// runs with now), from the cache or opened as `caller` (the kernel's permission checks are
    /// made then, and only then: a cached descriptor is the caller's own).
    func descriptor(_ id: UInt64, writable: Bool, caller: CallerIdentity? = nil) throws -> FileDescriptor {
        let identity = ThreadIdentity.key(for: caller)
        if let d = cache.ioDescriptor(id, identity: identity, writable: writable) { return d }
        let (fd, canWrite) = try caller.map { c in try c.apply { try openForIO(id, writable: writable) } }
            ?? openForIO(id, writable: writable)
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw StoreError(errno: errno, operation: "fstat") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw StoreError(st.st_mode & S_IFMT == S_IFDIR ? .isDirectory : .invalid, operation: "open for I/O")
        }
        let d = cache.adopt(fd, writable: canWrite)
        cache.attachIO(id, identity: identity, d)
        return d
    }

    /// Opens read-write when the caller may (one descriptor then serves reads and writes),
    /// read-only when that is all a reader may do, and as root when the caller owns the file.
    func openForIO(_ id: UInt64, writable: Bool) throws -> (Int32, Bool) {
        do {
            return (try open(id, flags: O_RDWR), true)
        } catch let e as StoreError where e.code == .accessDenied || e.code == .readOnly || e.code == .notPermitted {
            if !writable, let fd = try? open(id, flags: O_RDONLY) { return (fd, false) }
            guard e.code == .accessDenied, try attributes(of: id).uid == CallerIdentity.current.uid else { throw e }
            return (try CallerIdentity.asRoot { try open(id, flags: O_RDWR) }, true)
        }
    }

    /// Reads up to `count` bytes at `offset` straight into a new buffer (with 3 spare bytes so
    /// XDR fill can be appended without reallocating). Returns the data, whether it reaches the
    /// end of the file, and the attributes after the read.
    /// `caller`: the identity to open the file as when no descriptor of theirs is cached (nil:
    /// the identity this thread runs with).
    public func read(_ id: UInt64, offset: UInt64, count: Int, allocator: ByteBufferAllocator,
                     caller: CallerIdentity? = nil) throws -> (data: ByteBuffer, eof: Bool, attributes: FileAttributes)
    {
        let d = try descriptor(id, writable: false, caller: caller)
        // Open until the last system call on it, even if the cache evicts it meanwhile.
        defer { withExtendedLifetime(d) {} }
        // Nothing is past the largest offset a file can have: the end of the file.
        let count = offset < Self.maxOffset ? Int(min(UInt64(count), Self.maxOffset - offset)) : 0
        var buffer = allocator.buffer(capacity: count + 3)
        try readAll(d, at: offset, count: count, into: &buffer)
        return try readResult(d, id, offset: offset, data: buffer)
    }

    /// Reads `count` bytes at `offset` into `buffer`, fewer at the end of the file.
    func readAll(_ d: FileDescriptor, at offset: UInt64, count: Int, into buffer: inout ByteBuffer) throws {
        var total = 0
        while total < count {
            let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - total) { ptr in
                try sys("pread") { pread(d.fd, ptr.baseAddress, count - total, off_t(offset) + off_t(total)) }
            }
            if n == 0 { break }
            total += n
        }
    }

    /// What a READ returns once `data` was read at `offset`: whether it reaches the end of the
    /// file, and the attributes after the read.
    func readResult(_ d: FileDescriptor, _ id: UInt64, offset: UInt64, data: ByteBuffer) throws
        -> (data: ByteBuffer, eof: Bool, attributes: FileAttributes)
    {
        var st = stat()
        _ = try sys("fstat") { fstat(d.fd, &st) }
        let eof = offset + UInt64(data.readableBytes) >= UInt64(st.st_size)
        return (data, eof, try attributes(st, id: id))
    }

    /// Writes `data` at `offset` straight from the received buffer.
    public func write(_ id: UInt64, offset: UInt64, data: ByteBuffer, durability: WriteDurability) throws -> Int {
        try changing { try writeData(id, offset: offset, data: data, durability: durability) }
    }

    private func writeData(_ id: UInt64, offset: UInt64, data: ByteBuffer, durability: WriteDurability) throws -> Int {
        let d = try descriptor(id, writable: true)
        // Open until the last system call on it, even if the cache evicts it meanwhile.
        defer { withExtendedLifetime(d) {} }
        guard d.writable else { throw StoreError(.accessDenied, operation: "write") }
        let count = data.readableBytes
        guard offset <= Self.maxOffset - UInt64(count) else { throw StoreError(.fileTooBig, operation: "write") }
        func pwriteAll() throws -> Int {
            var total = 0
            try data.withUnsafeReadableBytes { ptr in
                while total < count {
                    let n = try sys("pwrite") { pwrite(d.fd, ptr.baseAddress! + total, count - total, off_t(offset) + off_t(total)) }
                    total += n
                }
            }
            return total
        }
        if durability == .unstable, let table = writeBackTable, table.hasRoom {
            // Copied into the journal later, from the file (see `WriteBackSettings`).
            let total = try pwriteAll()
            table.note(id, offset..<offset + UInt64(total))
            return total
        }
        // Room for the record (the data and a path) in the journal, held until it is appended.
        let room = count + Self.namespaceRecordRoom
        try recorder?.waitForRoom(bytes: room)
        defer { recorder?.releaseRoom(bytes: room) }
        let total = try pwriteAll()
        if let recorder {
            // The data goes to the journal; its order against renames is kept by the lock.
            changeLock.withLock {
                _ = recorder.recordWrite(fileID: id, path: path(of: id), offset: offset, data: data, exportID: exportID)
            }
            // Stability comes from the journal (the caller waits with `makeDurable`).
            return total
        }
        switch durability {
        case .unstable: break
        case .data: _ = try sys("fdatasync") { fdatasync(d.fd) }
        case .file: _ = try sys("fsync") { fsync(d.fd) }
        }
        return total
    }

    /// Makes everything written to the file stable (fsync), and the identity index with it.
    /// With a journal, the file's data goes into the journal, and is stable once the journal
    /// is: the caller waits for that (`makeDurable`), or holds its reply for it (`whenDurable`).
    public func commit(_ id: UInt64) throws {
        if isJournaled {
            try writeBack(id)
            index.sync()
            return
        }
        let attrs = try attributes(of: id)
        if attrs.type == .regular {
            let d = try descriptor(id, writable: false)
            // Open until the last system call on it, even if the cache evicts it meanwhile.
            defer { withExtendedLifetime(d) {} }
            _ = try sys("fsync") { fsync(d.fd) }
        }
        index.sync()
    }

    /// The attributes of a regular file through the descriptor its I/O uses, without
    /// resolving it again (around a WRITE); resolved when no descriptor is open.
    public func openFileAttributes(_ id: UInt64) throws -> FileAttributes {
        guard let d = cache.ioDescriptor(id, identity: ThreadIdentity.key, writable: false) else { return try attributes(of: id) }
        defer { withExtendedLifetime(d) {} }
        var st = stat()
        _ = try sys("fstat") { fstat(d.fd, &st) }
        return try attributes(st, id: id)
    }
}

extension FileStore {
    /// Runs `decide` with the attributes of `id` and a check of whether the current call's
    /// identity may access it in a mode (R_OK, W_OK, X_OK, or a combination), all on one
    /// resolution of the file. The check is the kernel's own: faccessat with AT_EACCESS uses
    /// the thread's file-system identity, ACLs included.
    public func withAccessCheck<T>(_ id: UInt64, _ decide: (FileAttributes, (Int32) -> Bool) throws -> T) throws -> T {
        try withLocation(id) { try accessCheck($0, $1, $2, id: id, decide) }
    }

    func accessCheck<T>(_ dirFD: Int32, _ name: [UInt8], _ st: stat, id: UInt64,
                        _ decide: (FileAttributes, (Int32) -> Bool) throws -> T) throws -> T {
        let a = try attributes(st, id: id)
        return try Self.cString(name) { p in
            try decide(a) { faccessat(dirFD, p, $0, AT_EACCESS | AT_SYMLINK_NOFOLLOW) == 0 }
        }
    }
}
