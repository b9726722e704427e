import Foundation
import SwiftNFSTesting
import Testing

/// Drives swiftnfsd with Clients/tirpc_client.c, a client on libtirpc's RPC stack.
@Suite("libtirpc client")
struct TirpcClientTests {
    @Test("NULL for NFS v3 and MOUNT v1/v3 over TCP and UDP", arguments: TirpcClient.Transport.allCases)
    func null(transport: TirpcClient.Transport) async throws {
        try await ServerProcess.with { server in
            let client = try await TirpcClient(server)
            for (program, version) in [("100003", "3"), ("100005", "3"), ("100005", "1")] {
                let result = try await client.run(transport, "null", program, version)
                #expect(result.succeeded && result.stdout == "ok\n", "\(result)")
            }
        }
    }

    @Test("NULL for an unknown program gets PROG_UNAVAIL", arguments: TirpcClient.Transport.allCases)
    func unknownProgram(transport: TirpcClient.Transport) async throws {
        try await ServerProcess.with { server in
            let client = try await TirpcClient(server)
            let result = try await client.run(transport, "null", "100099", "1")
            #expect(!result.succeeded, "\(result)")
            #expect(result.stderr.contains("Program unavailable"), "\(result)")
        }
    }

    @Test("MNT returns the root handle with AUTH_SYS; GETATTR on it describes the export directory",
          arguments: TirpcClient.Transport.allCases)
    func mountAndGetattr(transport: TirpcClient.Transport) async throws {
        try await ServerProcess.with { server in
            let client = try await TirpcClient(server)
            let mnt = try await client.checked(transport, "mnt", [server.exportPath])
            let flavors = mnt.value("flavors")?.split(separator: ",") ?? []
            #expect(flavors.contains("1"), "AUTH_SYS (1) should be offered: \(mnt)")
            let root = try #require(mnt.value("fh"))

            let attributes = try await client.getattr(root, over: transport)
            let onDisk = try FileManager.default.attributesOfItem(atPath: server.exportPath)
            #expect(attributes.type == 2, "NF3DIR")
            #expect(attributes.mode == (onDisk[.posixPermissions] as? Int))
            #expect(attributes.nlink >= 2)
        }
    }

    @Test("MNT of a path that is not exported fails")
    func mountUnexported() async throws {
        try await ServerProcess.with { server in
            let client = try await TirpcClient(server)
            let result = try await client.run(.tcp, "mnt", server.exportPath + "-not-exported")
            #expect(result.status == 3, "expected a mountstat3 error: \(result)")
            #expect(result.stderr.contains("mountstat3"), "\(result)")
        }
    }

    @Test("EXPORT lists the export path")
    func exportList() async throws {
        try await ServerProcess.with { server in
            let client = try await TirpcClient(server)
            for transport in TirpcClient.Transport.allCases {
                let result = try await client.checked(transport, "export", [])
                #expect(result.lines.contains("export=\(server.exportPath)"), "\(result)")
            }
        }
    }

    @Test("LOOKUP finds a file made on disk; GETATTR and READ agree with its contents")
    func lookupAndRead() async throws {
        try await ServerProcess.with { server in
            let contents = Pattern.bytes(count: 10_000)
            let path = server.exportURL.appendingPathComponent("made-on-disk.bin")
            try Data(contents).write(to: path)

            let client = try await TirpcClient(server)
            let root = try await client.mount(server.exportPath)
            let file = try await client.lookup(root, "made-on-disk.bin")
            let attributes = try await client.getattr(file)
            #expect(attributes.type == 1, "NF3REG")
            #expect(attributes.size == contents.count)

            for transport in TirpcClient.Transport.allCases {
                let read = try await client.read(file, offset: 0, count: 20_000, over: transport)
                #expect(read == .init(count: contents.count, eof: true, fnv1a64: Pattern.fnv1a64(contents)))
            }
            let middle = try await client.read(file, offset: 1_000, count: 500)
            #expect(middle == .init(count: 500, eof: false, fnv1a64: Pattern.fnv1a64(contents[1_000..<1_500])))

            let missing = try await client.run(.tcp, "lookup", root, "no-such-file")
            #expect(missing.status == 3 && missing.stderr.contains("NFS3ERR_NOENT"), "\(missing)")
        }
    }

    @Test("a retransmitted GUARDED CREATE (same xid) is answered from the duplicate request cache",
          arguments: TirpcClient.Transport.allCases)
    func createRetransmit(transport: TirpcClient.Transport) async throws {
        try await ServerProcess.with { server in
            let client = try await TirpcClient(server)
            let root = try await client.mount(server.exportPath, over: transport)
            let result = try await client.run(transport, "create-retransmit", root, "guarded-\(transport)")
            #expect(result.succeeded, "\(result)")
            #expect(result.value("first") == "NFS3_OK", "\(result)")
            #expect(result.value("second") == "NFS3_OK", "\(result)")
            #expect(result.value("third") == "NFS3ERR_EXIST", "\(result)")
            #expect(result.value("first_fh") != nil && result.value("first_fh") == result.value("second_fh"))
            let created = server.exportURL.appendingPathComponent("guarded-\(transport)").path
            #expect(FileManager.default.fileExists(atPath: created))
        }
    }

    @Test("a 1 MiB WRITE split into many record-marking fragments arrives intact")
    func writeMultiFragment() async throws {
        try await ServerProcess.with { server in
            let size = 1 << 20
            let client = try await TirpcClient(server)
            let root = try await client.mount(server.exportPath)
            let result = try await client.run(.tcp, "write-multifrag", root, "fragmented.bin", String(size))
            #expect(result.succeeded, "\(result)")
            #expect(result.lines.contains("ok"), "\(result)")
            #expect(result.lines.contains { $0.hasPrefix("frags>=") && (Int($0.dropFirst(7)) ?? 0) > 200 })

            let onDisk = try Data(contentsOf: server.exportURL.appendingPathComponent("fragmented.bin"))
            #expect(onDisk.count == size)
            #expect(onDisk == Data(Pattern.bytes(count: size)), "file on disk differs from what was written")
        }
    }
}
