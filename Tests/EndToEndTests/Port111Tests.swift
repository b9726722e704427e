import Foundation
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
}
