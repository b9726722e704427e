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
    /// A cached descriptor for reading (and, if asked, writing) a regular file.
    func descriptor(_ id: UInt64, writable: Bool) throws -> FileDescriptor {
        if let d = descriptors.get(id, writable: writable) { return d }
        let fd: Int32
        var canWrite = true
        do {
            fd = try open(id, flags: O_RDWR)
        } catch let e as StoreError where !writable && (e.code == .accessDenied || e.code == .readOnly || e.code == .notPermitted) {
            fd = try open(id, flags: O_RDONLY)
            canWrite = false
        } catch let e as StoreError where e.code == .isDirectory {
            throw e
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw StoreError(errno: errno, operation: "fstat") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw StoreError(st.st_mode & S_IFMT == S_IFDIR ? .isDirectory : .invalid, operation: "open for I/O")
        }
        let d = FileDescriptor(fd: fd, writable: canWrite)
        descriptors.put(id, d)
        return d
    }

    /// Reads up to `count` bytes at `offset` straight into a new buffer (with 3 spare bytes so
    /// XDR fill can be appended without reallocating). Returns the data, whether it reaches the
    /// end of the file, and the attributes after the read.
    public func read(_ id: UInt64, offset: UInt64, count: Int, allocator: ByteBufferAllocator) throws
        -> (data: ByteBuffer, eof: Bool, attributes: FileAttributes)
    {
        let d = try descriptor(id, writable: false)
        var buffer = allocator.buffer(capacity: count + 3)
        var total = 0
        while total < count {
            let n = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count - total) { ptr in
                try sys("pread") { pread(d.fd, ptr.baseAddress, count - total, off_t(offset) + off_t(total)) }
            }
            if n == 0 { break }
            total += n
        }
        var st = stat()
        _ = try sys("fstat") { fstat(d.fd, &st) }
        let eof = offset + UInt64(total) >= UInt64(st.st_size)
        return (buffer, eof, try attributes(st, id: id))
    }

    /// Writes `data` at `offset` straight from the received buffer.
    public func write(_ id: UInt64, offset: UInt64, data: ByteBuffer, durability: WriteDurability) throws -> Int {
        let d = try descriptor(id, writable: true)
        guard d.writable else { throw StoreError(.accessDenied, operation: "write") }
        var total = 0
        let count = data.readableBytes
        try data.withUnsafeReadableBytes { ptr in
            while total < count {
                let n = try sys("pwrite") { pwrite(d.fd, ptr.baseAddress! + total, count - total, off_t(offset) + off_t(total)) }
                total += n
            }
        }
        switch durability {
        case .unstable: break
        case .data: _ = try sys("fdatasync") { fdatasync(d.fd) }
        case .file: _ = try sys("fsync") { fsync(d.fd) }
        }
        return total
    }

    /// Makes everything written to the file stable (fsync), and the identity index with it.
    public func commit(_ id: UInt64) throws {
        let attrs = try attributes(of: id)
        if attrs.type == .regular {
            let d = try descriptor(id, writable: false)
            _ = try sys("fsync") { fsync(d.fd) }
        }
        index.sync()
    }

    /// The attributes of an open regular file (after a write) without resolving its path again.
    public func attributesAfterIO(_ id: UInt64) throws -> FileAttributes {
        guard let d = descriptors.get(id, writable: false) else { return try attributes(of: id) }
        var st = stat()
        _ = try sys("fstat") { fstat(d.fd, &st) }
        return try attributes(st, id: id)
    }
}
