import Logging
import NIOCore
import ONCRPC
import Portmap
import RPCTransport
import XDR

/// Registers programs with a system rpcbind through portmap v2 SET/UNSET over loopback (what
/// libtirpc's pmap_set does), and removes them again at shutdown.
struct RpcbindRegistration {
    let mappings: [PortmapMapping]
    let group: EventLoopGroup
    let logger: Logger

    func register() async throws {
        try await call { client in
            for program in Set(mappings.map { [$0.program, $0.version] }) {
                _ = try await set(client, PortmapProcedure.unset,
                                  PortmapMapping(program: program[0], version: program[1], protocolNumber: 0, port: 0))
            }
            for m in mappings {
                guard try await set(client, PortmapProcedure.set, m) else {
                    throw RegistrationError(mapping: m)
                }
            }
        }
        logger.info("registered with the system rpcbind", metadata: ["rpcbind.mappings": "\(mappings.count)"])
    }

    func unregister() async {
        do {
            try await call { client in
                for program in Set(mappings.map { [$0.program, $0.version] }) {
                    _ = try await set(client, PortmapProcedure.unset,
                                      PortmapMapping(program: program[0], version: program[1], protocolNumber: 0, port: 0))
                }
            }
            logger.info("unregistered from the system rpcbind")
        } catch {
            logger.warning("could not unregister from the system rpcbind", metadata: ["rpcbind.error": "\(error)"])
        }
    }

    private func call(_ body: (RPCClient) async throws -> Void) async throws {
        let client = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: Portmap.defaultPort),
                                                 transport: .tcp, group: group)
        do {
            try await body(client)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    private func set(_ client: RPCClient, _ procedure: UInt32, _ m: PortmapMapping) async throws -> Bool {
        var args = ByteBuffer()
        args.writePortmapMapping(m)
        var result = try await client.call(program: Portmap.program, version: 2, procedure: procedure,
                                           credentials: .sys(AuthSysParameters(machineName: "localhost", uid: 0, gid: 0)),
                                           arguments: args, timeout: .seconds(5))
        return try result.readXDRBool()
    }

    struct RegistrationError: Error, CustomStringConvertible {
        var mapping: PortmapMapping
        var description: String {
            "the system rpcbind refused program \(mapping.program) version \(mapping.version) (already registered by another server?)"
        }
    }
}
