import Foundation
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `durable=DIR` in the exports file: each export keeps its own journal and copy, without a
/// server-wide `--durable-dir`, and a lost served tree comes back from its own directory.
@Suite("Per-export durable directories", .serialized)
struct PerExportDurabilityTests {
    @Test("two exports with their own durable directories survive SIGKILL and the loss of both trees")
    func twoExportsTwoJournals() async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        let second = server.root.appendingPathComponent("export2").path
        try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
        let durable = [server.root.appendingPathComponent("ebs-a").path, server.root.appendingPathComponent("ebs-b").path]
        let exportsFile = server.root.appendingPathComponent("exports").path
        try """
            \(server.exportPath) *(rw,no_root_squash,insecure,durable=\(durable[0]))
            \(second) *(rw,no_root_squash,insecure,durable=\(durable[1]))
            """.write(toFile: exportsFile, atomically: true, encoding: .utf8)
        server.exportsFile = exportsFile
        server.extraArguments = ["--checkpoint-seconds", "1"]
        try await server.start()
        try await server.logged {
            var handles: [NFS3FileHandle] = []
            var client = try await server.nfsClient(machine: "durable")
            for (i, path) in [server.exportPath, second].enumerated() {
                let root = try await client.mount(path)
                let file = try #require(try await client.create(root, Array("file".utf8)).object)
                _ = try await client.write(file, offset: 0, data: ByteBuffer(bytes: content(i)), stable: .fileSync)
                handles.append(file)
            }
            await client.close()
            for dir in durable {
                var status = ""
                for _ in 0..<50 where !status.contains("server:         running") {
                    try await Task.sleep(for: .milliseconds(100))
                    status = try await Tools.runChecked(server.binary.path, ["status", "--durable-dir", dir]).stdout
                }
                #expect(status.contains("server:         running"), "\(dir):\n\(status)")
            }

            // A reload that names a durable directory not in use is refused; the table stays.
            try """
                \(server.exportPath) *(rw,no_root_squash,insecure,durable=\(server.root.appendingPathComponent("ebs-new").path))
                """.write(toFile: exportsFile, atomically: true, encoding: .utf8)
            kill(try #require(server.pid), SIGHUP)
            var refused = false
            for _ in 0..<50 where !refused {
                try await Task.sleep(for: .milliseconds(100))
                refused = server.logTail(lines: 200).contains("takes effect at the next start")
            }
            #expect(refused, "the reload was not refused:\n\(server.logTail())")

            try await server.kill()
            for path in [server.exportPath, second] {
                for name in try FileManager.default.contentsOfDirectory(atPath: path) {
                    try FileManager.default.removeItem(atPath: path + "/" + name)
                }
            }
            // The refused file would still be refused at start: give the good one back.
            try """
                \(server.exportPath) *(rw,no_root_squash,insecure,durable=\(durable[0]))
                \(second) *(rw,no_root_squash,insecure,durable=\(durable[1]))
                """.write(toFile: exportsFile, atomically: true, encoding: .utf8)
            try await server.start()
            client = try await server.nfsClient(machine: "durable")
            for (i, handle) in handles.enumerated() {
                #expect(try await client.readAll(handle) == content(i), "export \(i + 1): the data acknowledged before the crash")
            }
            await client.close()
        }
        try await server.stop()
    }

    func content(_ i: Int) -> [UInt8] { (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* (i + 3)) } }

}
