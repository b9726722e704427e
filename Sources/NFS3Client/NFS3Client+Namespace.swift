import NFS3
import NIOCore

// NFSv3 (RFC 1813 §3.3): the procedures on names in a directory, and listing one.
extension NFS3Client {
    public func lookup(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws -> NFS3LookupOkay {
        let call = NFS3LookupCall(what: NFS3DirOpArgs(directory: directory, name: name))
        return try await nfs(.lookup, { $0.writeNFS3LookupCall(call) }, result: { try $0.readNFS3LookupReply().result })
    }

    /// CREATE a regular file; by default GUARDED (NFS3ERR_EXIST if the name is taken), mode 0644.
    public func create(_ directory: NFS3FileHandle, _ name: [UInt8],
                       how: NFS3CreateHow = .guarded(NFS3SetAttributes(mode: 0o644))) async throws -> NFS3NewObjectOkay {
        let call = NFS3CreateCall(where: NFS3DirOpArgs(directory: directory, name: name), how: how)
        return try await nfs(.create, { $0.writeNFS3CreateCall(call) }, result: { try $0.readNFS3CreateReply().result })
    }

    /// MKDIR with mode 0755.
    public func mkdir(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws -> NFS3NewObjectOkay {
        let call = NFS3MkdirCall(where: NFS3DirOpArgs(directory: directory, name: name),
                                 attributes: NFS3SetAttributes(mode: 0o755))
        return try await nfs(.mkdir, { $0.writeNFS3MkdirCall(call) }, result: { try $0.readNFS3MkdirReply().result })
    }

    /// SYMLINK: a symbolic link holding `target` as given (the server never follows it).
    public func symlink(_ directory: NFS3FileHandle, _ name: [UInt8], to target: [UInt8]) async throws -> NFS3NewObjectOkay {
        let call = NFS3SymlinkCall(where: NFS3DirOpArgs(directory: directory, name: name),
                                   attributes: NFS3SetAttributes(mode: 0o777), target: target)
        return try await nfs(.symlink, { $0.writeNFS3SymlinkCall(call) }, result: { try $0.readNFS3SymlinkReply().result })
    }

    /// MKNOD: a FIFO, socket or device; `.other` asks for a type MKNOD does not make
    /// (the server answers NFS3ERR_BADTYPE).
    public func mknod(_ directory: NFS3FileHandle, _ name: [UInt8], _ what: NFS3MknodData) async throws -> NFS3NewObjectOkay {
        let call = NFS3MknodCall(where: NFS3DirOpArgs(directory: directory, name: name), what: what)
        return try await nfs(.mknod, { $0.writeNFS3MknodCall(call) }, result: { try $0.readNFS3MknodReply().result })
    }

    public func remove(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws {
        let call = NFS3RemoveCall(object: NFS3DirOpArgs(directory: directory, name: name))
        _ = try await nfs(.remove, { $0.writeNFS3RemoveCall(call) }, result: { try $0.readNFS3RemoveReply().result })
    }

    public func rmdir(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws {
        let call = NFS3RmdirCall(object: NFS3DirOpArgs(directory: directory, name: name))
        _ = try await nfs(.rmdir, { $0.writeNFS3RmdirCall(call) }, result: { try $0.readNFS3RmdirReply().result })
    }

    public func rename(_ fromDirectory: NFS3FileHandle, _ fromName: [UInt8],
                       to toDirectory: NFS3FileHandle, _ toName: [UInt8]) async throws {
        let call = NFS3RenameCall(from: NFS3DirOpArgs(directory: fromDirectory, name: fromName),
                                  to: NFS3DirOpArgs(directory: toDirectory, name: toName))
        _ = try await nfs(.rename, { $0.writeNFS3RenameCall(call) }, result: { try $0.readNFS3RenameReply().result })
    }

    /// LINK: a new name for `file` (a hard link).
    public func link(_ file: NFS3FileHandle, into directory: NFS3FileHandle, _ name: [UInt8]) async throws {
        let call = NFS3LinkCall(file: file, link: NFS3DirOpArgs(directory: directory, name: name))
        _ = try await nfs(.link, { $0.writeNFS3LinkCall(call) }, result: { try $0.readNFS3LinkReply().result })
    }

    /// READDIR: one page of names from `cookie` (0 and a zero verifier for the first), at most
    /// `count` bytes of reply.
    public func readdir(_ directory: NFS3FileHandle, cookie: UInt64, verifier: NFS3Verifier,
                        count: UInt32) async throws -> NFS3ReaddirOkay {
        let call = NFS3ReaddirCall(directory: directory, cookie: cookie, cookieVerifier: verifier, count: count)
        return try await nfs(.readdir, { $0.writeNFS3ReaddirCall(call) }, result: { try $0.readNFS3ReaddirReply().result })
    }

    /// READDIRPLUS: one page of names with their attributes and handles.
    public func readdirplus(_ directory: NFS3FileHandle, cookie: UInt64, verifier: NFS3Verifier,
                            dirCount: UInt32, maxCount: UInt32) async throws -> NFS3ReaddirplusOkay {
        let call = NFS3ReaddirplusCall(directory: directory, cookie: cookie, cookieVerifier: verifier,
                                       dirCount: dirCount, maxCount: maxCount)
        return try await nfs(.readdirplus, { $0.writeNFS3ReaddirplusCall(call) },
                             result: { try $0.readNFS3ReaddirplusReply().result })
    }
}
