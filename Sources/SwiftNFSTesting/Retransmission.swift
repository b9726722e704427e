import NFS3
import NIOCore
import NIOPosix
import ONCRPC
import RPCTransport

/// NFS calls under xids a test chooses, from a loopback port it chooses: a client's
/// retransmission as a duplicate request cache sees it (the same xid and arguments from the
/// same address and port). Over UDP, whose port is free again as soon as its socket closes
/// (the Linux client reconnects over TCP from the same port; the cache keys both alike).
package enum Retransmission {
    package static let credentials = RPCCredentials.sys(AuthSysParameters(machineName: "client", uid: 0, gid: 0, groups: []))

    /// Runs `body` with a client of the server at 127.0.0.1:`nfsPort` bound to
    /// 127.0.0.1:`clientPort`, closed (its port free again) when `body` returns.
    package static func withClient<T>(of nfsPort: Int, from clientPort: Int, _ body: (RPCClient) async throws -> T) async throws -> T {
        let rpc = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: nfsPort), transport: .udp,
                                              localAddress: try SocketAddress(ipAddress: "127.0.0.1", port: clientPort),
                                              group: MultiThreadedEventLoopGroup.singleton)
        do {
            let result = try await body(rpc)
            await rpc.close()
            return result
        } catch {
            await rpc.close()
            throw error
        }
    }

    /// One NFS call as root under `xid`; the whole reply after xid and msg_type.
    package static func call(_ rpc: RPCClient, _ procedure: NFS3Procedure, xid: UInt32,
                             _ arguments: (inout ByteBuffer) -> Void) async throws -> [UInt8] {
        var args = ByteBuffer()
        arguments(&args)
        let reply = try await rpc.rawCall(program: NFS3.program, version: NFS3.version, procedure: procedure.rawValue,
                                          credentials: credentials, arguments: args, xid: xid, timeout: .seconds(10))
        return Array(reply.readableBytesView)
    }

    /// The nfsstat3 of a reply `call` returned.
    package static func status(_ reply: [UInt8]) throws -> NFS3Status {
        var b = ByteBuffer(bytes: reply)
        let accepted = try b.readRPCReplyStatus()
        guard accepted == .success, let raw = b.readInteger(as: UInt32.self), let status = NFS3Status(rawValue: raw) else {
            throw ToolFailure(message: "not an NFS reply: \(accepted), \(reply)", result: nil)
        }
        return status
    }

    /// A REMOVE of "gone", an exclusive CREATE of "new", the same CREATE with another
    /// verifier (another client's), and a RENAME of "old" to "renamed", all in `root`.
    package struct Calls {
        package var remove: (inout ByteBuffer) -> Void
        package var create: (inout ByteBuffer) -> Void
        package var createAgain: (inout ByteBuffer) -> Void
        package var rename: (inout ByteBuffer) -> Void

        package init(root: NFS3FileHandle) {
            remove = { $0.writeNFS3RemoveCall(NFS3RemoveCall(object: NFS3DirOpArgs(directory: root, name: Array("gone".utf8)))) }
            create = {
                $0.writeNFS3CreateCall(NFS3CreateCall(where: NFS3DirOpArgs(directory: root, name: Array("new".utf8)),
                                                      how: .exclusive(NFS3Verifier(0x1234_5678))))
            }
            // Another client's exclusive create of the same name (another verifier).
            createAgain = {
                $0.writeNFS3CreateCall(NFS3CreateCall(where: NFS3DirOpArgs(directory: root, name: Array("new".utf8)),
                                                      how: .exclusive(NFS3Verifier(0x9999))))
            }
            rename = {
                $0.writeNFS3RenameCall(NFS3RenameCall(from: NFS3DirOpArgs(directory: root, name: Array("old".utf8)),
                                                      to: NFS3DirOpArgs(directory: root, name: Array("renamed".utf8))))
            }
        }
    }
}
