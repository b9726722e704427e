import NFS3
import NIOCore
import ONCRPC
import RPCTransport

extension BenchNFSClient {
    /// Connects over TCP from a chosen local address and port (a source address in
    /// 127.0.0.0/8, or a privileged port for `secure` exports).
    public static func connect(to address: SocketAddress, from local: SocketAddress, credentials: RPCCredentials,
                               timeout: TimeAmount, group: EventLoopGroup) async throws -> BenchNFSClient {
        let rpc = try await RPCClient.connect(to: address, transport: .tcp, localAddress: local, group: group)
        return BenchNFSClient(rpc: rpc, credentials: credentials, timeout: timeout)
    }

    /// Calls a procedure with raw arguments and returns the nfsstat3 of the reply (for tests
    /// of refusals, where the arguments may be deliberately wrong).
    public func status(of procedure: NFS3Procedure, arguments: ByteBuffer) async throws -> NFS3Status {
        var results = try await rpc.call(program: NFS3.program, version: NFS3.version, procedure: procedure.rawValue,
                                         credentials: credentials, arguments: arguments, timeout: timeout)
        return try results.readNFS3Status()
    }

    public func rename(_ fromDirectory: NFS3FileHandle, _ fromName: [UInt8],
                       to toDirectory: NFS3FileHandle, _ toName: [UInt8]) async throws {
        let call = NFS3RenameCall(from: NFS3DirOpArgs(directory: fromDirectory, name: fromName),
                                  to: NFS3DirOpArgs(directory: toDirectory, name: toName))
        let reply = try await nfs(.rename, { $0.writeNFS3RenameCall(call) }, decode: { try $0.readNFS3RenameReply() })
        _ = try Self.okay(reply.result, .rename)
    }

    public func symlink(_ directory: NFS3FileHandle, _ name: [UInt8], to target: [UInt8]) async throws -> NFS3NewObjectOkay {
        let call = NFS3SymlinkCall(where: NFS3DirOpArgs(directory: directory, name: name),
                                   attributes: NFS3SetAttributes(mode: 0o777), target: target)
        let reply = try await nfs(.symlink, { $0.writeNFS3SymlinkCall(call) }, decode: { try $0.readNFS3SymlinkReply() })
        return try Self.okay(reply.result, .symlink)
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
