import NFS3
import NIOCore
import ONCRPC
import RPCTransport
import XDR

/// A typed NFSv3 and MOUNT v3 client over one `RPCClient` TCP connection, with AUTH_SYS (or
/// AUTH_NONE) credentials: for tests, the benchmark and operators' tools. Every method encodes
/// the call with the NFS3 module's codecs, decodes the whole reply strictly (no trailing
/// bytes), returns the OK arm, and throws `NFS3ClientError` for anything else.
public struct NFS3Client: Sendable {
    let rpc: RPCClient
    let credentials: RPCCredentials
    /// How long each call waits for its reply.
    public let timeout: TimeAmount

    init(rpc: RPCClient, credentials: RPCCredentials, timeout: TimeAmount) {
        self.rpc = rpc
        self.credentials = credentials
        self.timeout = timeout
    }

    /// Connects over TCP (giving up on the connection after `connectTimeout`).
    public static func connect(to address: SocketAddress, credentials: RPCCredentials, timeout: TimeAmount,
                               connectTimeout: TimeAmount = .seconds(10), group: EventLoopGroup) async throws -> NFS3Client {
        let rpc = try await RPCClient.connect(to: address, transport: .tcp, connectTimeout: connectTimeout, group: group)
        return NFS3Client(rpc: rpc, credentials: credentials, timeout: timeout)
    }

    /// Connects over TCP from a chosen local address and port (a source address in
    /// 127.0.0.0/8, or a privileged port for `secure` exports).
    public static func connect(to address: SocketAddress, from local: SocketAddress, credentials: RPCCredentials,
                               timeout: TimeAmount, group: EventLoopGroup) async throws -> NFS3Client {
        let rpc = try await RPCClient.connect(to: address, transport: .tcp, localAddress: local, group: group)
        return NFS3Client(rpc: rpc, credentials: credentials, timeout: timeout)
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
            throw NFS3ClientError(.rpc, procedure: name, "\(error.reason)", isFatal: fatal)
        } catch {
            throw NFS3ClientError(.rpc, procedure: name, "\(error)")
        }
        do {
            let value = try decode(&results)
            try results.expectXDREnd()
            return value
        } catch {
            throw NFS3ClientError(.malformedReply, procedure: name, "\(error)")
        }
    }

    func nfs<T>(_ procedure: NFS3Procedure, _ encode: (inout ByteBuffer) -> Void,
                decode: (inout ByteBuffer) throws -> T) async throws -> T {
        try await call(program: NFS3.program, version: NFS3.version, procedure: procedure.rawValue,
                       name: procedure.name, encode, decode: decode)
    }

    /// Calls an NFS procedure and returns the OK arm of its result, or throws its status.
    func nfs<O, F>(_ procedure: NFS3Procedure, _ encode: (inout ByteBuffer) -> Void,
                   result: (inout ByteBuffer) throws -> NFS3Result<O, F>) async throws -> O {
        switch try await nfs(procedure, encode, decode: result) {
        case .okay(let o): return o
        case .fail(let status, _): throw NFS3ClientError.status(status, procedure)
        }
    }

    /// Calls a procedure with raw arguments and returns the nfsstat3 of the reply (for tests
    /// of refusals, where the arguments may be deliberately wrong). The rest of the reply is
    /// not decoded.
    public func status(of procedure: NFS3Procedure, arguments: ByteBuffer) async throws -> NFS3Status {
        try await nfs(procedure, { $0.writeImmutableBuffer(arguments) }, decode: { results in
            let status = try results.readNFS3Status()
            results.moveReaderIndex(forwardBy: results.readableBytes)
            return status
        })
    }
}
