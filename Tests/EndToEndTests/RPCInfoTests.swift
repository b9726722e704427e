import Foundation
import NIOCore
import NIOPosix
import Portmap
import RPCTransport
import SwiftNFSTesting
import Testing

/// rpcinfo (from Debian's rpcbind) sends NULL calls with its own RPC stack.
///
/// `rpcinfo -a 127.0.0.1.P1.P2 -T tcp|udp PROG VERS` calls the given address
/// directly. The older `rpcinfo -n PORT -t|-u` form is not used here: Debian's
/// rpcinfo ignores `-n` and looks the program up through port 111 (see
/// Port111Tests for that path).
@Suite("rpcinfo NULL calls")
struct RPCInfoTests {
    static func ping(port: Int, _ transport: String, _ program: Int, _ version: Int) async throws -> ToolResult {
        try await Tools.run(
            "rpcinfo", ["-a", Ports.universalAddress(port), "-T", transport, String(program), String(version)])
    }

    @Test("NFS v3, MOUNT v1/v3 and portmap v2/v3/v4 answer NULL on TCP and UDP")
    func nullCalls() async throws {
        try await ServerProcess.with { server in
            let services: [(program: Int, version: Int, port: Int)] = [
                (100003, 3, server.nfsPort),
                (100005, 3, server.nfsPort),
                (100005, 1, server.nfsPort),
                (100000, 2, server.portmapPort),
                (100000, 3, server.portmapPort),
                (100000, 4, server.portmapPort),
            ]
            for service in services {
                for transport in ["tcp", "udp"] {
                    let result = try await Self.ping(port: service.port, transport, service.program, service.version)
                    #expect(result.succeeded, "\(result)")
                    #expect(
                        result.stdout.contains("program \(service.program) version \(service.version) ready and waiting"),
                        "\(result)")
                }
            }
        }
    }

    @Test("an unsupported NFS version gets PROG_MISMATCH naming version 3 as low and high")
    func versionMismatch() async throws {
        try await ServerProcess.with { server in
            for transport in ["tcp", "udp"] {
                let result = try await Self.ping(port: server.nfsPort, transport, 100003, 2)
                #expect(!result.succeeded, "\(result)")
                #expect((result.stdout + result.stderr).contains("low version = 3, high version = 3"), "\(result)")
            }
        }
    }

    @Test("DUMP with bytes after its (empty) arguments is answered, as rpcbind answers it (pyNfsClient sends 8); NFS stays strict")
    func dumpWithTrailingBytes() async throws {
        try await ServerProcess.with { server in
            let portmap = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.portmapPort),
                                                      transport: .tcp, group: MultiThreadedEventLoopGroup.singleton)
            var extra = ByteBuffer()
            extra.writeInteger(UInt64(0))
            var reply = try await portmap.call(program: 100_000, version: 2, procedure: 4, arguments: extra)
            let mappings = try reply.readXDRArray(limit: 100) { try $0.readPortmapMapping() }
            #expect(mappings.contains { $0.program == 100_003 && $0.port == UInt32(server.nfsPort) })
            await portmap.close()
            let nfs = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
                                                  transport: .tcp, group: MultiThreadedEventLoopGroup.singleton)
            do {
                _ = try await nfs.call(program: 100_003, version: 3, procedure: 0, arguments: extra)
                Issue.record("NFS NULL with trailing bytes was accepted")
            } catch let error as RPCClientError {
                #expect(error.reason == .rejected(.garbageArgs))
            }
            await nfs.close()
        }
    }
}
