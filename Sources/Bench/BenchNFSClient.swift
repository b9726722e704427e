import Mount
import NFS3
import NIOCore
import NIOPosix
import ONCRPC
import Portmap
import RPCTransport
import XDR

/// NFSv3 and MOUNT v3 calls over one `RPCClient` connection, with AUTH_SYS credentials. Every
/// method decodes the whole reply strictly (no trailing bytes), returns the NFS3_OK arm, and
/// throws `BenchError` for anything else.
public struct BenchNFSClient: Sendable {
    let rpc: RPCClient
    let credentials: RPCCredentials
    let timeout: TimeAmount

    init(rpc: RPCClient, credentials: RPCCredentials, timeout: TimeAmount) {
        self.rpc = rpc
        self.credentials = credentials
        self.timeout = timeout
    }

    /// Connects over TCP.
    public static func connect(to address: SocketAddress, credentials: RPCCredentials, timeout: TimeAmount,
                               group: EventLoopGroup) async throws -> BenchNFSClient {
        let rpc = try await RPCClient.connect(to: address, transport: .tcp, group: group)
        return BenchNFSClient(rpc: rpc, credentials: credentials, timeout: timeout)
    }

    public func close() async { await rpc.close() }

    /// Calls a procedure of `program` and decodes its results with `decode`, which must consume
    /// them all.
    func call<T>(program: UInt32, version: UInt32, procedure: UInt32, name: String,
                 _ encode: (inout ByteBuffer) -> Void, decode: (inout ByteBuffer) throws -> T) async throws -> T {
        var arguments = ByteBuffer()
        encode(&arguments)
        var results: ByteBuffer
        do {
            results = try await rpc.call(program: program, version: version, procedure: procedure,
                                         credentials: credentials, arguments: arguments, timeout: timeout)
        } catch let error as RPCClientError {
            let fatal = error.reason == .connectionClosed
            throw BenchError(.rpc, procedure: name, "\(error.reason)", isFatal: fatal)
        } catch {
            throw BenchError(.rpc, procedure: name, "\(error)")
        }
        do {
            let value = try decode(&results)
            try results.expectXDREnd()
            return value
        } catch let error as BenchError {
            throw error
        } catch {
            throw BenchError(.malformedReply, procedure: name, "\(error)")
        }
    }

    func nfs<T>(_ procedure: NFS3Procedure, _ encode: (inout ByteBuffer) -> Void,
                decode: (inout ByteBuffer) throws -> T) async throws -> T {
        try await call(program: NFS3.program, version: NFS3.version, procedure: procedure.rawValue,
                       name: procedure.name, encode, decode: decode)
    }

    /// The OK arm of a result, or the status as a `BenchError`.
    static func okay<O, F>(_ result: NFS3Result<O, F>, _ procedure: NFS3Procedure) throws -> O {
        switch result {
        case .okay(let o): return o
        case .fail(let status, _): throw BenchError.status(status, procedure)
        }
    }

    // MARK: MOUNT v3 (RFC 1813 appendix I)

    public func mount(_ path: String) async throws -> NFS3FileHandle {
        let result = try await call(program: Mount.program, version: 3, procedure: MountProcedure.mnt, name: "MNT",
                                    { $0.writeXDRString(path) }, decode: { try $0.readMountResult3() })
        switch result {
        case .success(let ok): return NFS3FileHandle(ok.fileHandle)
        case .failure(let status): throw BenchError(.status, procedure: "MNT", "MNT3ERR_\("\(status)".uppercased()) for \(path)")
        }
    }

    public func unmount(_ path: String) async throws {
        try await call(program: Mount.program, version: 3, procedure: MountProcedure.umnt, name: "UMNT",
                       { $0.writeXDRString(path) }, decode: { _ in () })
    }

    // MARK: NFSv3 (RFC 1813 §3.3)

    public func null() async throws {
        try await nfs(.null, { _ in }, decode: { _ in () })
    }

    public func getattr(_ object: NFS3FileHandle) async throws -> NFS3FileAttributes {
        let reply = try await nfs(.getattr, { $0.writeNFS3GetattrCall(NFS3GetattrCall(object: object)) },
                                  decode: { try $0.readNFS3GetattrReply() })
        return try Self.okay(reply.result, .getattr)
    }

    public func lookup(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws -> NFS3LookupOkay {
        let call = NFS3LookupCall(what: NFS3DirOpArgs(directory: directory, name: name))
        let reply = try await nfs(.lookup, { $0.writeNFS3LookupCall(call) }, decode: { try $0.readNFS3LookupReply() })
        return try Self.okay(reply.result, .lookup)
    }

    public func access(_ object: NFS3FileHandle, mask: UInt32) async throws -> NFS3AccessOkay {
        let call = NFS3AccessCall(object: object, access: mask)
        let reply = try await nfs(.access, { $0.writeNFS3AccessCall(call) }, decode: { try $0.readNFS3AccessReply() })
        return try Self.okay(reply.result, .access)
    }

    public func read(_ file: NFS3FileHandle, offset: UInt64, count: UInt32) async throws -> NFS3ReadOkay {
        let call = NFS3ReadCall(file: file, offset: offset, count: count)
        let reply = try await nfs(.read, { $0.writeNFS3ReadCall(call) }, decode: { try $0.readNFS3ReadReply() })
        return try Self.okay(reply.result, .read)
    }

    public func write(_ file: NFS3FileHandle, offset: UInt64, data: ByteBuffer,
                      stable: NFS3StableHow) async throws -> NFS3WriteOkay {
        let call = NFS3WriteCall(file: file, offset: offset, count: UInt32(data.readableBytes), stable: stable, data: data)
        let reply = try await nfs(.write, { $0.writeNFS3WriteCall(call) }, decode: { try $0.readNFS3WriteReply() })
        return try Self.okay(reply.result, .write)
    }

    public func commit(_ file: NFS3FileHandle, offset: UInt64, count: UInt32) async throws -> NFS3CommitOkay {
        let call = NFS3CommitCall(file: file, offset: offset, count: count)
        let reply = try await nfs(.commit, { $0.writeNFS3CommitCall(call) }, decode: { try $0.readNFS3CommitReply() })
        return try Self.okay(reply.result, .commit)
    }

    public func create(_ directory: NFS3FileHandle, _ name: [UInt8],
                       how: NFS3CreateHow = .guarded(NFS3SetAttributes(mode: 0o644))) async throws -> NFS3NewObjectOkay {
        let call = NFS3CreateCall(where: NFS3DirOpArgs(directory: directory, name: name), how: how)
        let reply = try await nfs(.create, { $0.writeNFS3CreateCall(call) }, decode: { try $0.readNFS3CreateReply() })
        return try Self.okay(reply.result, .create)
    }

    public func mkdir(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws -> NFS3NewObjectOkay {
        let call = NFS3MkdirCall(where: NFS3DirOpArgs(directory: directory, name: name),
                                 attributes: NFS3SetAttributes(mode: 0o755))
        let reply = try await nfs(.mkdir, { $0.writeNFS3MkdirCall(call) }, decode: { try $0.readNFS3MkdirReply() })
        return try Self.okay(reply.result, .mkdir)
    }

    public func remove(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws {
        let call = NFS3RemoveCall(object: NFS3DirOpArgs(directory: directory, name: name))
        let reply = try await nfs(.remove, { $0.writeNFS3RemoveCall(call) }, decode: { try $0.readNFS3RemoveReply() })
        _ = try Self.okay(reply.result, .remove)
    }

    public func rmdir(_ directory: NFS3FileHandle, _ name: [UInt8]) async throws {
        let call = NFS3RmdirCall(object: NFS3DirOpArgs(directory: directory, name: name))
        let reply = try await nfs(.rmdir, { $0.writeNFS3RmdirCall(call) }, decode: { try $0.readNFS3RmdirReply() })
        _ = try Self.okay(reply.result, .rmdir)
    }

    public func setattr(_ object: NFS3FileHandle, _ attributes: NFS3SetAttributes) async throws -> NFS3WCCData {
        let call = NFS3SetattrCall(object: object, newAttributes: attributes, guardCtime: nil)
        let reply = try await nfs(.setattr, { $0.writeNFS3SetattrCall(call) }, decode: { try $0.readNFS3SetattrReply() })
        return try Self.okay(reply.result, .setattr)
    }

    public func readdirplus(_ directory: NFS3FileHandle, cookie: UInt64, verifier: NFS3Verifier,
                            dirCount: UInt32, maxCount: UInt32) async throws -> NFS3ReaddirplusOkay {
        let call = NFS3ReaddirplusCall(directory: directory, cookie: cookie, cookieVerifier: verifier,
                                       dirCount: dirCount, maxCount: maxCount)
        let reply = try await nfs(.readdirplus, { $0.writeNFS3ReaddirplusCall(call) },
                                  decode: { try $0.readNFS3ReaddirplusReply() })
        return try Self.okay(reply.result, .readdirplus)
    }

    public func fsinfo(_ root: NFS3FileHandle) async throws -> NFS3FsinfoOkay {
        let reply = try await nfs(.fsinfo, { $0.writeNFS3FsinfoCall(NFS3FsinfoCall(fsRoot: root)) },
                                  decode: { try $0.readNFS3FsinfoReply() })
        return try Self.okay(reply.result, .fsinfo)
    }
}

/// Portmap v2 GETPORT (RFC 1833 §3.1): the TCP port a program version is registered on.
public enum PortmapLookup {
    public static func tcpPort(program: UInt32, version: UInt32, host: String, portmapPort: Int,
                               group: EventLoopGroup) async throws -> Int {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: portmapPort)
        let rpc = try await RPCClient.connect(to: address, transport: .tcp, group: group)
        let mapping = PortmapMapping(program: program, version: version, protocolNumber: Portmap.protocolTCP, port: 0)
        var arguments = ByteBuffer()
        arguments.writePortmapMapping(mapping)
        let port: UInt32
        do {
            var results = try await rpc.call(program: Portmap.program, version: 2, procedure: PortmapProcedure.getAddress,
                                             arguments: arguments, timeout: .seconds(10))
            port = try results.readXDRUInt32()
            await rpc.close()
        } catch {
            await rpc.close()
            throw BenchError(.setup, "portmapper on \(host):\(portmapPort): \(error)")
        }
        guard port != 0 else {
            throw BenchError(.setup, "program \(program) version \(version) is not registered with the portmapper on \(host):\(portmapPort)")
        }
        return Int(port)
    }
}
