import Foundation
import SwiftNFSTesting
import Testing

/// libnfs's command-line tools (Debian libnfs-utils), given explicit ports so
/// no portmapper is asked: `nfs://127.0.0.1/EXPORT/FILE?nfsport=N&mountport=N`.
@Suite("libnfs utilities")
struct LibNFSTests {
    static func url(_ server: ServerProcess, _ file: String? = nil) -> String {
        let path = server.exportPath + (file.map { "/" + $0 } ?? "")
        return "nfs://127.0.0.1\(path)?nfsport=\(server.nfsPort)&mountport=\(server.nfsPort)"
    }

    static func randomData(count: Int) throws -> Data {
        let urandom = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/dev/urandom"))
        defer { try? urandom.close() }
        return try urandom.read(upToCount: count) ?? Data()
    }

    @Test("nfs-cp copies a random 3 MiB file in and back out byte for byte")
    func copyInAndOut() async throws {
        try await ServerProcess.with { server in
            let original = try Self.randomData(count: 3 << 20)
            #expect(original.count == 3 << 20)
            let local = server.root.appendingPathComponent("local-original.bin")
            let back = server.root.appendingPathComponent("local-copy.bin")
            try original.write(to: local)

            try await Tools.runChecked("nfs-cp", [local.path, Self.url(server, "copied.bin")])
            let onServerDisk = try Data(contentsOf: server.exportURL.appendingPathComponent("copied.bin"))
            #expect(onServerDisk == original, "the export's copy differs from the original")

            try await Tools.runChecked("nfs-cp", [Self.url(server, "copied.bin"), back.path])
            #expect(try Data(contentsOf: back) == original, "the copy read back differs from the original")
        }
    }

    @Test("nfs-cat prints a file's contents")
    func cat() async throws {
        try await ServerProcess.with { server in
            let text = (1...2_000).map { "line \($0) of a file written on disk\n" }.joined()
            try Data(text.utf8).write(to: server.exportURL.appendingPathComponent("lines.txt"))
            let result = try await Tools.runChecked("nfs-cat", [Self.url(server, "lines.txt")])
            #expect(result.stdoutData == Data(text.utf8), "nfs-cat printed \(result.stdoutData.count) bytes")
        }
    }

    @Test("nfs-ls of a directory of 100,000 entries lists each name exactly once", .timeLimit(.minutes(15)))
    func listHugeDirectory() async throws {
        try await ServerProcess.with { server in
            let names = (0..<100_000).map { String(format: "entry-%06d", $0) }
            for name in names {
                let path = server.exportPath + "/" + name
                try #require(FileManager.default.createFile(atPath: path, contents: nil), "creating \(path)")
            }

            // nfs-ls mounts the URL's whole path, so list the export root itself.
            let result = try await Tools.runChecked("nfs-ls", [Self.url(server)], timeout: .seconds(600))
            // Each line is "<mode> <nlink> <uid> <gid> <size> <name>"; our names have no spaces.
            let listed = result.lines.compactMap { $0.split(separator: " ").last.map(String.init) }
                .filter { $0 != "." && $0 != ".." }

            var seen: [String: Int] = [:]
            for name in listed { seen[name, default: 0] += 1 }
            let duplicates = seen.filter { $0.value > 1 }.keys.sorted()
            let missing = Set(names).subtracting(seen.keys).sorted()
            let unexpected = Set(seen.keys).subtracting(names).sorted()
            #expect(listed.count == names.count)
            #expect(duplicates.isEmpty, "listed more than once: \(duplicates.prefix(20))")
            #expect(missing.isEmpty, "\(missing.count) missing, e.g. \(missing.prefix(20))")
            #expect(unexpected.isEmpty, "unexpected: \(unexpected.prefix(20))")
        }
    }
}
