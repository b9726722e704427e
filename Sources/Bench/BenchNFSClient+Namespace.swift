import NFS3
import NIOCore

extension BenchNFSClient {
    public func rename(_ fromDirectory: NFS3FileHandle, _ fromName: [UInt8],
                       to toDirectory: NFS3FileHandle, _ toName: [UInt8]) async throws {
        let call = NFS3RenameCall(from: NFS3DirOpArgs(directory: fromDirectory, name: fromName),
                                  to: NFS3DirOpArgs(directory: toDirectory, name: toName))
        let reply = try await nfs(.rename, { $0.writeNFS3RenameCall(call) }, decode: { try $0.readNFS3RenameReply() })
        _ = try Self.okay(reply.result, .rename)
    }

    public func link(_ file: NFS3FileHandle, into directory: NFS3FileHandle, _ name: [UInt8]) async throws {
        let call = NFS3LinkCall(file: file, link: NFS3DirOpArgs(directory: directory, name: name))
        let reply = try await nfs(.link, { $0.writeNFS3LinkCall(call) }, decode: { try $0.readNFS3LinkReply() })
        _ = try Self.okay(reply.result, .link)
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
}
