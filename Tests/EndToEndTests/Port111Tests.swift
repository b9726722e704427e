import Foundation
import NIOCore
import NIOPosix
import Portmap
import RPCTransport
import SwiftNFSTesting
import Testing

/// Clients that only know the standard portmapper port: the server runs with
/// `--portmap-port 111`. One server at a time can hold port 111, hence
/// `.serialized`; skipped when something (such as a system rpcbind) holds it.
@Suite(
    "Embedded portmapper on port 111",
    .serialized,
    .enabled(
        if: Ports.isFree(111),
        "port 111 on 127.0.0.1 is in use (a system rpcbind?); stop it to run these tests")
)
struct Port111Tests {
    @Test("rpcinfo -p lists NFS v3 and MOUNT v1/v3 on the server's port over TCP and UDP")
    func rpcinfoDump() async throws {
        try await ServerProcess.with(portmap: .port(111)) { server in
            let result = try await Tools.runChecked("rpcinfo", ["-p", "127.0.0.1"])
            // Lines look like "    100003    3   tcp  20490  nfs".
            let rows = Set(result.lines.map { $0.split(separator: " ").prefix(4).joined(separator: " ") })
            for (program, version) in [(100003, 3), (100005, 3), (100005, 1)] {
                for proto in ["tcp", "udp"] {
                    let row = "\(program) \(version) \(proto) \(server.nfsPort)"
                    #expect(rows.contains(row), "missing '\(row)' in:\n\(result.stdout)")
                }
            }
        }
    }

    @Test("rpcinfo -t/-u finds NFS v3 and MOUNT v3 through the portmapper and pings them")
    func rpcinfoLookupAndPing() async throws {
        try await ServerProcess.with(portmap: .port(111)) { server in
            for (program, version) in [(100003, 3), (100005, 3)] {
                for transport in ["-t", "-u"] {
                    let result = try await Tools.run(
                        "rpcinfo", [transport, "127.0.0.1", String(program), String(version)])
                    #expect(
                        result.succeeded && result.stdout.contains("program \(program) version \(version) ready and waiting"),
                        "\(result)")
                }
            }
        }
    }

    @Test("showmount -e lists the export")
    func showmountExports() async throws {
        try await ServerProcess.with(portmap: .port(111)) { server in
            let result = try await Tools.runChecked("showmount", ["-e", "127.0.0.1"])
            #expect(result.lines.contains { $0.hasPrefix(server.exportPath + " ") }, "\(result)")
        }
    }

    @Test("nfs-cp with no port options finds the server through the portmapper")
    func copyWithoutPorts() async throws {
        try await ServerProcess.with(portmap: .port(111)) { server in
            let original = try LibNFSTests.randomData(count: 1 << 20)
            let local = server.root.appendingPathComponent("local.bin")
            let back = server.root.appendingPathComponent("back.bin")
            try original.write(to: local)
            let url = "nfs://127.0.0.1\(server.exportPath)/via-portmap.bin"

            try await Tools.runChecked("nfs-cp", [local.path, url])
            try await Tools.runChecked("nfs-cp", [url, back.path])
            #expect(try Data(contentsOf: back) == original)
            #expect(try Data(contentsOf: server.exportURL.appendingPathComponent("via-portmap.bin")) == original)
        }
    }

    /// `rpcinfo HOST` (rpcbind v4 DUMP) as rows of words: program, version, netid, address, ...
    static func rpcbindDump(_ host: String) async throws -> (rows: [[String]], text: String) {
        let result = try await Tools.runChecked("rpcinfo", [host])
        return (result.lines.map { $0.split(separator: " ").map(String.init) }, result.stdout)
    }

    static func has(_ rows: [[String]], _ program: String, _ version: String, _ netid: String? = nil, _ address: String? = nil) -> Bool {
        rows.contains { row in
            row.count >= 4 && row[0] == program && row[1] == version
                && (netid == nil || row[2] == netid) && (address == nil || row[3] == address)
        }
    }

    @Test("the portmapper answers on IPv6 loopback too, with universal addresses of each family")
    func ipv6Loopback() async throws {
        try await ServerProcess.with(portmap: .port(111)) { server in
            let port = "\(server.nfsPort >> 8).\(server.nfsPort & 0xff)"
            for host in ["127.0.0.1", "::1"] {
                let (rows, text) = try await Self.rpcbindDump(host)
                #expect(Self.has(rows, "100003", "3", "tcp", "127.0.0.1.\(port)"), "\(text)")
                #expect(Self.has(rows, "100003", "3", "tcp6", "::1.\(port)"), "\(text)")
                #expect(Self.has(rows, "100021", "4"), "NLM v4 not registered: \(text)")
                #expect(Self.has(rows, "100024", "1"), "NSM not registered: \(text)")
            }
        }
    }

    @Test("local programs register through /run/rpcbind.sock; they cannot take the server's NLM; their registrations outlive a restart")
    func localSocketRegistrations() async throws {
        let socket = "/run/rpcbind.sock"
        let server = try ServerProcess(portmap: .port(111))
        defer { server.removeFiles() }
        try await server.start()
        try await server.logged {
            let attributes = try FileManager.default.attributesOfItem(atPath: socket)
            #expect((attributes[.posixPermissions] as? Int) == 0o666)
            let rpc = try await RPCClient.connect(to: try SocketAddress(unixDomainSocketPath: socket), transport: .tcp,
                                                  group: MultiThreadedEventLoopGroup.singleton)
            // rpcbind v4 SET, as rpc.statd and the kernel's lockd register.
            for (program, port) in [(UInt32(100_099), 4242), (100_021, 4243)] {
                var args = ByteBuffer()
                args.writeRPCBinding(RPCBinding(program: program, version: 4, netid: "tcp",
                                                address: "0.0.0.0.\(port >> 8).\(port & 0xff)", owner: "0"))
                var reply = try await rpc.call(program: 100_000, version: 4, procedure: 1, arguments: args)
                #expect(try reply.readXDRBool(), "SET of \(program)")
            }
            await rpc.close()
            let dump = try await Tools.runChecked("rpcinfo", ["-p", "127.0.0.1"])
            let rows = Set(dump.lines.map { $0.split(separator: " ").prefix(4).joined(separator: " ") })
            #expect(rows.contains("100099 4 tcp 4242"), "\(dump)")
            #expect(rows.contains("100021 4 tcp \(server.nfsPort)") && !rows.contains("100021 4 tcp 4243"), "\(dump)")
        }
        try await server.stop()
        #expect(!FileManager.default.fileExists(atPath: socket))
        try await server.start()
        try await server.logged {
            let dump = try await Tools.runChecked("rpcinfo", ["-p", "127.0.0.1"])
            #expect(dump.stdout.contains("100099"), "\(dump)")
        }
        try await server.stop()
    }
}
