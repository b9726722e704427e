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

/// An OS crash (a reboot) with the instance store intact: the served tree may lack what the
/// kernel had not written out yet, and the server, finding no marker of its own run in /run,
/// replays the journal onto it. Simulated on a live file system: after SIGKILL, every change
/// made since the last checkpoint is undone in place (same inodes, as a disk that never got
/// them), and the marker is removed, as a reboot clears /run.
@Suite("A reboot with the served tree behind the journal", .serialized,
       .enabled(if: getuid() == 0, "needs root: identity tags and /run"))
struct RebootReplayTests {
    let old1 = [UInt8](repeating: 1, count: 3000), new1 = [UInt8](repeating: 11, count: 5000)
    let old3 = [UInt8](repeating: 3, count: 2000), data2 = [UInt8](repeating: 2, count: 7000)
    let dataG = [UInt8](repeating: 7, count: 100)

    @Test("the journal is replayed onto the served tree, and handles from before resolve")
    func rebootReplay() async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        let durable = server.root.appendingPathComponent("durable").path
        server.extraArguments = ["--durable-dir", durable, "--checkpoint-seconds", "3600"]
        try await server.start()
        try await server.logged {
            try await exercise(server, durable: durable)
        }
        try await server.stop()
    }

    func exercise(_ server: ServerProcess, durable: String) async throws {
        var client = try await server.nfsClient(machine: "reboot")
        var root = try await client.mount(server.exportPath)
        func make(_ name: String, _ data: [UInt8], in dir: NFS3FileHandle? = nil) async throws -> NFS3FileHandle {
            let fh = try #require(try await client.create(dir ?? root, Array(name.utf8)).object)
            _ = try await client.write(fh, offset: 0, data: ByteBuffer(bytes: data), stable: .fileSync)
            return fh
        }
        let h1 = try await make("f1", old1)
        let h3 = try await make("f3", old3)
        let h5 = try await make("f5", [5])
        // Checkpointed: from here on the journal holds what the tree may lose.
        _ = try await Tools.runChecked(server.binary.path, ["checkpoint", "--durable-dir", durable])
        let export = server.exportPath
        let kept = server.root.appendingPathComponent("kept-f5").path
        #expect(link(export + "/f5", kept) == 0)

        _ = try await client.write(h1, offset: 0, data: ByteBuffer(bytes: new1), stable: .fileSync)
        let h2 = try await make("f2", data2)
        try await client.rename(root, Array("f3".utf8), to: root, Array("f4".utf8))
        try await client.remove(root, Array("f5".utf8))
        let d = try #require(try await client.mkdir(root, Array("d".utf8)).object)
        let hg = try await make("g", dataG, in: d)
        await client.close()
        try await server.kill()

        // The reboot: none of it reached the disk, and /run is empty.
        let f1 = open(export + "/f1", O_WRONLY)
        #expect(f1 >= 0)
        _ = old1.withUnsafeBytes { pwrite(f1, $0.baseAddress, $0.count, 0) }
        #expect(ftruncate(f1, off_t(old1.count)) == 0)
        close(f1)
        #expect(unlink(export + "/f2") == 0)
        #expect(rename(export + "/f4", export + "/f3") == 0)
        #expect(link(kept, export + "/f5") == 0)
        #expect(unlink(export + "/d/g") == 0)
        #expect(rmdir(export + "/d") == 0)
        #expect(unlink(Self.runMarker(exportPath: export)) == 0, "the server's marker in /run")

        try await server.start()
        #expect(server.logTail(lines: 100).contains("journal replayed onto the served tree"))
        client = try await server.nfsClient(machine: "reboot")
        root = try await client.mount(server.exportPath)
        func content(_ path: [String]) async -> [UInt8]? {
            var fh = root
            for name in path {
                guard let next = try? await client.lookup(fh, Array(name.utf8)).object else { return nil }
                fh = next
            }
            return try? await client.readAll(fh)
        }
        #expect(await content(["f1"]) == new1)
        #expect(await content(["f2"]) == data2)
        #expect(await content(["f3"]) == nil)
        #expect(await content(["f4"]) == old3)
        #expect(await content(["f5"]) == nil)
        #expect(await content(["d", "g"]) == dataG)
        // Handles from before the reboot name the same files.
        for (handle, data) in [(h1, new1), (h2, data2), (h3, old3), (hg, dataG)] {
            #expect(try await client.readAll(handle) == data)
        }
        let looked = try await client.lookup(root, Array("f4".utf8))
        #expect(looked.objectAttributes?.fileid == (try await client.getattr(h3)).fileid)
        await #expect(throws: (any Error).self, "the removed file's handle") { _ = try await client.getattr(h5) }
        await client.close()
    }

    @Test("a rebuild of a lost served tree keeps every handle, a symlink's (which carries no tag) included")
    func rebuildKeepsHandles() async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        server.extraArguments = ["--durable-dir", server.root.appendingPathComponent("durable").path]
        try await server.start()
        try await server.logged {
            var client = try await server.nfsClient(machine: "rebuild")
            var root = try await client.mount(server.exportPath)
            let d = try #require(try await client.mkdir(root, Array("d".utf8)).object)
            let f = try #require(try await client.create(d, Array("f".utf8)).object)
            _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: old1), stable: .fileSync)
            let l = try #require(try await client.symlink(root, Array("l".utf8), to: Array("d/f".utf8)).object)
            await client.close()
            try await server.kill()
            try server.wipeExport()
            try await server.start()
            client = try await server.nfsClient(machine: "rebuild")
            root = try await client.mount(server.exportPath)
            for (handle, path) in [(d, ["d"]), (f, ["d", "f"]), (l, ["l"])] {
                var found = root
                for name in path { found = try await client.lookup(found, Array(name.utf8)).object }
                let before = try await client.getattr(handle)
                #expect(try await client.getattr(found).fileid == before.fileid, "\(path.joined(separator: "/")) after the rebuild")
            }
            #expect(try await client.readAll(f) == old1)
            await client.close()
        }
        try await server.stop()
    }

    /// `/run/swiftnfs/running-ID`, ID being the export's id: FNV-1a of the export path when no
    /// `fsid=` is given (as the server computes it).
    static func runMarker(exportPath: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in exportPath.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return "/run/swiftnfs/running-" + String(h, radix: 16)
    }

}
