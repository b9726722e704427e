import Foundation
import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// UNSTABLE data in durable mode is answered from the served file and copied into the journal
/// later (`WriteBackSettings`): at the file's COMMIT, once it has waited `--write-back-ms`, and
/// at a stop. Each test loses the served tree afterwards (SIGKILL or SIGTERM, then the
/// instance store wiped) and reads back through the handles it had.
@Suite("Write-back of UNSTABLE data into the journal", .serialized)
struct WriteBackTests {
    @Test("copied at COMMIT, once however often it was rewritten, under the name and size the file has then")
    func copiedAtCommit() async throws {
        let (server, durable) = try Self.server(writeBackMs: 600_000)
        defer { server.removeFiles() }
        try await server.start()
        let final = pattern(300_000, 3), tail = pattern(65_536, 9)
        let handles = try await server.logged {
            let client = try await server.nfsClient(machine: "write-back")
            let root = try await client.mount(server.exportPath)
            // Written three times over before its COMMIT: nothing of it in the journal yet.
            let moved = try #require(try await client.create(root, Array("a".utf8)).object)
            for seed: UInt8 in [1, 2, 3] {
                let w = try await client.write(moved, offset: 0, data: ByteBuffer(bytes: pattern(300_000, seed)), stable: .unstable)
                #expect(w.committed == .unstable)
            }
            #expect(try await writeRecords(server, durable, "a") == 0, "UNSTABLE data in the journal before its COMMIT or its time")
            // Renamed before the COMMIT: the record names the file where it is then.
            _ = try await client.rename(root, Array("a".utf8), to: root, Array("b".utf8))
            _ = try await client.commit(moved, offset: 0, count: 0)
            // One record of 300,000 bytes (a piece each MiB), whatever was rewritten.
            #expect(try await writeRecords(server, durable, "b") == 1, "the rewritten range is copied once")

            // Cut to nothing after an UNSTABLE write, then written past a hole: the COMMIT copies
            // what the file holds now (zeros before the new data), not the data cut away.
            let cut = try #require(try await client.create(root, Array("c".utf8)).object)
            _ = try await client.write(cut, offset: 0, data: ByteBuffer(bytes: pattern(65_536, 5)), stable: .unstable)
            _ = try await client.setattr(cut, NFS3SetAttributes(size: 0))
            _ = try await client.write(cut, offset: 131_072, data: ByteBuffer(bytes: tail), stable: .unstable)
            _ = try await client.commit(cut, offset: 0, count: 0)
            await client.close()
            return (moved: moved, cut: cut)
        }
        try await server.kill()
        try server.wipeExport()
        try await server.start()
        let client = try await server.nfsClient(machine: "write-back")
        _ = try await client.mount(server.exportPath)
        #expect(try await client.readAll(handles.moved) == final, "the committed file after the served tree was lost")
        #expect(try await client.readAll(handles.cut) == [UInt8](repeating: 0, count: 131_072) + tail,
                "the file cut and written again, after the served tree was lost")
        #expect(!FileManager.default.fileExists(atPath: server.exportPath + "/a"), "the old name came back")
        await client.close()
        try await server.stop()
    }

    @Test("copied without a COMMIT once it has waited --write-back-ms, and at a stop")
    func copiedByAgeAndAtStop() async throws {
        let (server, durable) = try Self.server(writeBackMs: 300)
        defer { server.removeFiles() }
        try await server.start()
        let aged = pattern(200_000, 11)
        let file = try await server.logged {
            let client = try await server.nfsClient(machine: "write-back")
            let root = try await client.mount(server.exportPath)
            let file = try #require(try await client.create(root, Array("aged".utf8)).object)
            _ = try await client.write(file, offset: 0, data: ByteBuffer(bytes: aged), stable: .unstable)
            var records = 0
            for _ in 0..<50 where records == 0 {
                try await Task.sleep(for: .milliseconds(100))
                records = try await writeRecords(server, durable, "aged")
            }
            #expect(records == 1, "UNSTABLE data not in the journal 5 s after it was written, with no COMMIT")
            await client.close()
            return file
        }
        try await server.kill()
        try server.wipeExport()

        // Now data that would wait a long time, and a stop: the stop copies it (3 pieces).
        server.extraArguments = Self.arguments(durable, writeBackMs: 600_000)
        try await server.start()
        let big = pattern(2_500_000, 13)
        let client = try await server.nfsClient(machine: "write-back")
        let root = try await client.mount(server.exportPath)
        #expect(try await client.readAll(file) == aged, "the data copied by age, after the served tree was lost")
        let bigFile = try #require(try await client.create(root, Array("big".utf8)).object)
        for offset in stride(from: 0, to: big.count, by: 1 << 20) {
            let piece = Array(big[offset..<min(big.count, offset + (1 << 20))])
            _ = try await client.write(bigFile, offset: UInt64(offset), data: ByteBuffer(bytes: piece), stable: .unstable)
        }
        await client.close()
        try await server.stop()
        try server.wipeExport()
        try await server.start()
        let again = try await server.nfsClient(machine: "write-back")
        _ = try await again.mount(server.exportPath)
        #expect(try await again.readAll(bigFile) == big, "UNSTABLE data written before a SIGTERM, after the served tree was lost")
        await again.close()
        try await server.stop()
    }

    static func arguments(_ durable: String, writeBackMs: Int) -> [String] {
        ["--durable-dir", durable, "--checkpoint-seconds", "3600", "--journal-flush-ms", "100", "--write-back-ms", String(writeBackMs)]
    }

    static func server(writeBackMs: Int) throws -> (ServerProcess, String) {
        let server = try ServerProcess(portmap: .none)
        let durable = server.root.appendingPathComponent("durable").path
        server.extraArguments = arguments(durable, writeBackMs: writeBackMs)
        return (server, durable)
    }

    /// How many WRITE records of the file named `name` the journal holds (`journal inspect`).
    func writeRecords(_ server: ServerProcess, _ durable: String, _ name: String) async throws -> Int {
        let inspect = try await Tools.runChecked(server.binary.path, ["journal", "inspect", "--durable-dir", durable]).stdout
        return inspect.split(separator: "\n").filter { $0.contains("write  \(name) (file ") }.count
    }

    func pattern(_ count: Int, _ seed: UInt8) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) ^ seed }
    }
}
