import Foundation
import SwiftNFSTesting
import Testing

/// File handles must outlive the server process when --state-dir is kept.
@Suite("Restart")
struct RestartTests {
    @Test("handles from before a rename and a SIGKILL still work after restarting with the same state dir")
    func handlesSurviveKill() async throws {
        try await ServerProcess.with { server in
            let client = try await TirpcClient(server)
            let root = try await client.mount(server.exportPath)
            let dirA = try await client.mkdir(root, "a")
            let dirB = try await client.mkdir(root, "b")
            let file = try await client.create(dirA, "f")
            try await client.write(file, offset: 0, count: 5_000)
            let expectedRead = TirpcClient.ReadResult(
                count: 5_000, eof: true, fnv1a64: Pattern.fnv1a64(Pattern.bytes(count: 5_000)))

            // Move a/f to b/g through NFS; the handle must follow the file.
            try await client.rename(dirA, "f", to: dirB, "g")
            let exportDir = server.exportURL
            #expect(FileManager.default.fileExists(atPath: exportDir.appendingPathComponent("b/g").path))
            #expect(!FileManager.default.fileExists(atPath: exportDir.appendingPathComponent("a/f").path))

            var before: [String: TirpcClient.Attributes] = [:]
            for (name, fh) in [("root", root), ("a", dirA), ("b", dirB), ("file", file)] {
                before[name] = try await client.getattr(fh)
            }
            #expect(before["file"]?.size == 5_000)
            #expect(try await client.read(file, offset: 0, count: 10_000) == expectedRead)

            try await server.kill()
            try await server.start()

            for (name, fh) in [("root", root), ("a", dirA), ("b", dirB), ("file", file)] {
                let after = try await client.getattr(fh)
                #expect(after.fileid == before[name]?.fileid, "fileid of \(name) changed across restart")
                #expect(after.type == before[name]?.type)
            }
            #expect(try await client.getattr(file).size == 5_000)
            #expect(try await client.read(file, offset: 0, count: 10_000) == expectedRead)

            // The new name resolves to the same file.
            let lookedUp = try await client.lookup(dirB, "g")
            #expect(try await client.getattr(lookedUp).fileid == before["file"]?.fileid)
            let gone = try await client.run(.tcp, "lookup", dirA, "f")
            #expect(gone.status == 3 && gone.stderr.contains("NFS3ERR_NOENT"), "\(gone)")
        }
    }
}
