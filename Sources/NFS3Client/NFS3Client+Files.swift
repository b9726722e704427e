import NFS3
import NIOCore

// NFSv3 (RFC 1813 §3.3): the procedures on one object or on the file system.
extension NFS3Client {
    /// NULL: a round trip that does nothing (RFC 1813 §3.3.0).
    public func null() async throws {
        try await nfs(.null, { _ in }, decode: { _ in () })
    }

    public func getattr(_ object: NFS3FileHandle) async throws -> NFS3FileAttributes {
        try await nfs(.getattr, { $0.writeNFS3GetattrCall(NFS3GetattrCall(object: object)) },
                      result: { try $0.readNFS3GetattrReply().result })
    }

    /// SETATTR; with `guardCtime`, the server refuses (NFS3ERR_NOT_SYNC) unless the object's
    /// ctime is still that one.
    public func setattr(_ object: NFS3FileHandle, _ attributes: NFS3SetAttributes,
                        guardCtime: NFS3Time? = nil) async throws -> NFS3WCCData {
        let call = NFS3SetattrCall(object: object, newAttributes: attributes, guardCtime: guardCtime)
        return try await nfs(.setattr, { $0.writeNFS3SetattrCall(call) },
                             result: { try $0.readNFS3SetattrReply().result })
    }

    public func access(_ object: NFS3FileHandle, mask: UInt32) async throws -> NFS3AccessOkay {
        let call = NFS3AccessCall(object: object, access: mask)
        return try await nfs(.access, { $0.writeNFS3AccessCall(call) }, result: { try $0.readNFS3AccessReply().result })
    }

    /// READLINK: the target a symbolic link holds, as the bytes SYMLINK was given.
    public func readlink(_ symlink: NFS3FileHandle) async throws -> NFS3ReadlinkOkay {
        try await nfs(.readlink, { $0.writeNFS3ReadlinkCall(NFS3ReadlinkCall(symlink: symlink)) },
                      result: { try $0.readNFS3ReadlinkReply().result })
    }

    public func read(_ file: NFS3FileHandle, offset: UInt64, count: UInt32) async throws -> NFS3ReadOkay {
        let call = NFS3ReadCall(file: file, offset: offset, count: count)
        return try await nfs(.read, { $0.writeNFS3ReadCall(call) }, result: { try $0.readNFS3ReadReply().result })
    }

    /// Reads a whole file (up to `limit` bytes) in 64 KiB calls.
    public func readAll(_ file: NFS3FileHandle, limit: Int = 64 << 20) async throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < limit {
            let r = try await read(file, offset: UInt64(out.count), count: 65536)
            out += r.data.readableBytesView
            if r.eof || r.data.readableBytes == 0 { break }
        }
        return out
    }

    public func write(_ file: NFS3FileHandle, offset: UInt64, data: ByteBuffer,
                      stable: NFS3StableHow) async throws -> NFS3WriteOkay {
        let call = NFS3WriteCall(file: file, offset: offset, count: UInt32(data.readableBytes), stable: stable, data: data)
        return try await nfs(.write, { $0.writeNFS3WriteCall(call) }, result: { try $0.readNFS3WriteReply().result })
    }

    /// COMMIT: UNSTABLE writes in the range (count 0: to the end) reach stable storage.
    public func commit(_ file: NFS3FileHandle, offset: UInt64, count: UInt32) async throws -> NFS3CommitOkay {
        let call = NFS3CommitCall(file: file, offset: offset, count: count)
        return try await nfs(.commit, { $0.writeNFS3CommitCall(call) }, result: { try $0.readNFS3CommitReply().result })
    }

    /// FSSTAT: the space and file slots of the file system holding `root`, total and free.
    public func fsstat(_ root: NFS3FileHandle) async throws -> NFS3FsstatOkay {
        try await nfs(.fsstat, { $0.writeNFS3FsstatCall(NFS3FsstatCall(fsRoot: root)) },
                      result: { try $0.readNFS3FsstatReply().result })
    }

    /// FSINFO: the server's transfer sizes and what the file system supports.
    public func fsinfo(_ root: NFS3FileHandle) async throws -> NFS3FsinfoOkay {
        try await nfs(.fsinfo, { $0.writeNFS3FsinfoCall(NFS3FsinfoCall(fsRoot: root)) },
                      result: { try $0.readNFS3FsinfoReply().result })
    }

    /// PATHCONF: the POSIX limits of names and links on the file system holding `object`.
    public func pathconf(_ object: NFS3FileHandle) async throws -> NFS3PathconfOkay {
        try await nfs(.pathconf, { $0.writeNFS3PathconfCall(NFS3PathconfCall(object: object)) },
                      result: { try $0.readNFS3PathconfReply().result })
    }
}
