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

/// The operator's tools for the journal (`swiftnfsd status`, `checkpoint`, `journal inspect`)
/// against a real server's durable directory, intact and damaged; and the journal's bound,
/// which slows acknowledgements rather than drop anything.
@Suite("Journal tools and bound", .serialized)
struct JournalToolsTests {
    @Test("inspect, checkpoint and status, then a damaged journal: reported, never a crash")
    func toolsOnIntactAndDamagedJournal() async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        let durable = server.root.appendingPathComponent("durable").path
        server.extraArguments = ["--durable-dir", durable, "--checkpoint-seconds", "3600", "--journal-flush-ms", "100"]
        try await server.start()
        let swiftnfsd = server.binary.path
        let a = pattern(10_000, 1), b = pattern(20_000, 2)
        try await server.logged {
            let client = try await server.nfsClient(machine: "tools")
            let root = try await client.mount(server.exportPath)
            let fileA = try #require(try await client.create(root, Array("a".utf8)).object)
            _ = try await client.write(fileA, offset: 0, data: ByteBuffer(bytes: a), stable: .fileSync)

            let inspect = try await Tools.runChecked(swiftnfsd, ["journal", "inspect", "--durable-dir", durable]).stdout
            #expect(inspect.contains("create a (file "), "journal inspect:\n\(inspect)")
            #expect(inspect.contains("write  a (file ") && inspect.contains("10000 bytes at 0"), "journal inspect:\n\(inspect)")

            // A checkpoint on request puts the file into the copy.
            let checkpoint = try await Tools.runChecked(swiftnfsd, ["checkpoint", "--durable-dir", durable]).stdout
            #expect(checkpoint.hasPrefix("checkpointed through record "), "swiftnfsd checkpoint: \(checkpoint)")
            let copies = try FileManager.default.contentsOfDirectory(atPath: durable + "/copy")
            let copyOfA = try #require(copies.first.map { durable + "/copy/" + $0 + "/a" })
            #expect(FileManager.default.contents(atPath: copyOfA).map(Array.init) == a, "the copy after the checkpoint")
            let status = try await Tools.runChecked(swiftnfsd, ["status", "--durable-dir", durable]).stdout
            #expect(status.contains("checkpointed:   through record ") && status.contains("degraded:       no"), "status:\n\(status)")

            // More changes, then a crash: they are only in the journal.
            let fileB = try #require(try await client.create(root, Array("b".utf8)).object)
            _ = try await client.write(fileB, offset: 0, data: ByteBuffer(bytes: b), stable: .fileSync)
            await client.close()
            try await server.kill()
        }

        // Damage the first record after the checkpoint (create b); the write after it is intact.
        let segments = try FileManager.default.contentsOfDirectory(atPath: durable + "/journal").filter { $0.hasSuffix(".jnl") }.sorted()
        let newest = durable + "/journal/" + (try #require(segments.last))
        var bytes = try #require(FileManager.default.contents(atPath: newest))
        bytes[16 + 12] ^= 0xFF  // past the 16-byte segment header, inside the first frame
        try bytes.write(to: URL(fileURLWithPath: newest))

        let inspect = try await Tools.run(swiftnfsd, ["journal", "inspect", "--durable-dir", durable])
        #expect(inspect.status == 1, "journal inspect of a damaged journal exits 1, not a crash: \(inspect)")
        #expect(inspect.stdout.contains("DAMAGE: ") && inspect.stdout.contains("damaged segment(s)"), "\(inspect.stdout)")
        let status = try await Tools.run(swiftnfsd, ["status", "--durable-dir", durable])
        #expect(status.succeeded, "swiftnfsd status on a damaged journal: \(status)")
        // No server running: the checkpoint runs here, applies what is before the damage, says so.
        let checkpoint = try await Tools.run(swiftnfsd, ["checkpoint", "--durable-dir", durable])
        #expect(checkpoint.succeeded && checkpoint.stdout.contains("damage: "), "swiftnfsd checkpoint on a damaged journal: \(checkpoint)")
        // Without a server nothing can make the served tree durable: the journal stays.
        #expect(checkpoint.stdout.contains("the journal is kept"), "\(checkpoint.stdout)")
        #expect(FileManager.default.fileExists(atPath: newest), "the offline checkpoint deleted a segment")

        // The server starts on it, logs the damage, and serves what was recovered.
        try await server.start()
        try await server.logged {
            let client = try await server.nfsClient(machine: "tools")
            let root = try await client.mount(server.exportPath)
            let found = try await client.lookup(root, Array("a".utf8))
            #expect(try await client.readAll(found.object) == a)
            await client.close()
            #expect(server.logTail(lines: 200).contains("journal damaged"), "the damage is not in the log:\n\(server.logTail())")
        }
        try await server.stop()
    }

    @Test("a journal over its bound slows writers down and drops nothing")
    func boundedJournal() async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        let durable = server.root.appendingPathComponent("durable").path
        // 1 MiB of journal at most; no periodic checkpoint: only the bound makes them.
        server.extraArguments = ["--durable-dir", durable, "--max-journal-mib", "1", "--checkpoint-seconds", "3600",
                                 "--journal-flush-ms", "50"]
        try await server.start()
        try await server.logged {
            let client = try await server.nfsClient(machine: "tools")
            let root = try await client.mount(server.exportPath)
            let file = try #require(try await client.create(root, Array("big".utf8)).object)
            var expected: [UInt8] = []
            for i in 0..<24 {  // 6 MiB in 256 KiB stable writes
                let data = pattern(256 << 10, UInt8(i))
                _ = try await client.write(file, offset: UInt64(expected.count), data: ByteBuffer(bytes: data), stable: .fileSync)
                expected += data
            }
            await client.close()
            // Checkpoints kept the journal near its bound, and the copy has every byte.
            let segments = try FileManager.default.contentsOfDirectory(atPath: durable + "/journal").filter { $0.hasSuffix(".jnl") }
            // (A checkpoint may delete a segment meanwhile.)
            let journalBytes = segments.reduce(0) { sum, name in
                sum + ((try? FileManager.default.attributesOfItem(atPath: durable + "/journal/" + name))?[.size] as? Int ?? 0)
            }
            #expect(journalBytes < 3 << 20, "the journal holds \(journalBytes) bytes with a bound of 1 MiB")
            _ = try await Tools.runChecked(server.binary.path, ["checkpoint", "--durable-dir", durable])
            let copies = try FileManager.default.contentsOfDirectory(atPath: durable + "/copy")
            let copy = try #require(copies.first.map { durable + "/copy/" + $0 + "/big" })
            #expect(FileManager.default.contents(atPath: copy).map(Array.init) == expected, "the copy of the 6 MiB file")
        }
        try await server.stop()
    }

    @Test("the copy a rebuild runs dies with a server killed during the rebuild")
    func rebuildCopyDiesWithTheServer() async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        let durable = server.root.appendingPathComponent("durable").path
        server.extraArguments = ["--durable-dir", durable]
        // A tree big enough that copying it takes a while: the first start copies it to EBS.
        let block = Data(pattern(32 << 10, 7))
        for i in 0..<8000 { try block.write(to: server.exportURL.appendingPathComponent("f\(i)")) }
        try await server.start(timeout: .seconds(120))
        try await server.stop()
        // The instance store is lost; the restart rebuilds it and is killed while it copies.
        try server.wipeExport()
        let restart = Task { try? await server.start(timeout: .seconds(60)) }
        var copying = false
        for _ in 0..<200 where !copying {
            try await Task.sleep(for: .milliseconds(5))
            copying = !copiers(of: durable).isEmpty
        }
        #expect(copying, "the rebuild's cp was never seen")
        // SIGKILL, without waiting: the tied copy dies with its parent at once; an untied one
        // would copy on for a good part of a second.
        kill(try #require(server.pid), SIGKILL)
        var outlived = true
        for _ in 0..<10 where outlived {
            try await Task.sleep(for: .milliseconds(5))
            outlived = !copiers(of: durable).isEmpty
        }
        #expect(!outlived, "a cp of the rebuild outlived the killed server")
        try await server.kill()
        _ = await restart.value
        try await server.kill()
    }

    /// Processes whose command line mentions `path` and that are cp.
    func copiers(of path: String) -> [Int32] {
        guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return pids.compactMap(Int32.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let args = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return args.first == "/bin/cp" && args.contains { $0.hasPrefix(path) }
        }
    }

    func pattern(_ count: Int, _ seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 13) ^ seed }
    }

}
