import Mount
import NFS3
import NIOCore
import XDR

// MOUNT v3 (RFC 1813 appendix I), on the MOUNT program's port (which may differ from NFS's).
extension NFS3Client {
    func mountCall<T>(_ procedure: UInt32, _ name: String, _ encode: (inout ByteBuffer) -> Void,
                      decode: (inout ByteBuffer) throws -> T) async throws -> T {
        try await call(program: Mount.program, version: 3, procedure: procedure, name: name, encode, decode: decode)
    }

    /// MNT: the root handle of an export (or of a directory below one).
    public func mount(_ path: String) async throws -> NFS3FileHandle {
        let result = try await mountCall(MountProcedure.mnt, "MNT", { $0.writeXDRString(path) },
                                         decode: { try $0.readMountResult3() })
        switch result {
        case .success(let ok):
            return NFS3FileHandle(ok.fileHandle)
        case .failure(let status):
            var error = NFS3ClientError(.status, procedure: "MNT", "MNT3ERR_\("\(status)".uppercased()) for \(path)")
            error.mountStatus = status
            throw error
        }
    }

    /// UMNT: removes the server's record of this client's mount of `path` (always succeeds).
    public func unmount(_ path: String) async throws {
        try await mountCall(MountProcedure.umnt, "UMNT", { $0.writeXDRString(path) }, decode: { _ in () })
    }

    /// DUMP: the mounts the server has recorded, for every client.
    public func mounts() async throws -> [MountEntry] {
        try await mountCall(MountProcedure.dump, "DUMP", { _ in }, decode: { try $0.readMountList() })
    }

    /// EXPORT: the exported directories and the groups allowed to mount each.
    public func exports() async throws -> [ExportEntry] {
        try await mountCall(MountProcedure.export, "EXPORT", { _ in }, decode: { try $0.readExportList() })
    }
}
