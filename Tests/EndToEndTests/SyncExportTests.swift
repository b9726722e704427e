import Foundation
import NFS3
import NFS3Client
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Without a journal, a `sync` export answers a change other than an UNSTABLE WRITE only once
/// it is on stable storage (RFC 1813 §4.7-4.8; knfsd's `sync` does the same), and an `async` export
/// answers at once. Seen from the disk: the served tree is ext2 on a loop device, which has no
/// journal of its own, so nothing reaches the device unless someone syncs it, and the device's
/// count of completed writes (/sys/block/loopN/stat) must have grown before each reply.
@Suite("Changes on sync exports reach the disk before their replies", .serialized,
       .enabled(if: getuid() == 0, "needs root: mounts a loop device"))
struct SyncExportTests {
    /// ext2 on a loop device whose completed writes the kernel counts.
    struct CountedDisk {
        let base: String
        let device: String
        var path: String { base + "/mnt" }

        static func make() async throws -> CountedDisk {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-sync-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: base + "/mnt", withIntermediateDirectories: true)
            _ = try await Tools.runChecked("truncate", ["-s", "32M", base + "/image"])
            let device = try await Tools.runChecked("losetup", ["-f", "--show", base + "/image"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let disk = CountedDisk(base: base, device: device)
            _ = try await Tools.runChecked("mkfs.ext2", ["-q", device])
            _ = try await Tools.runChecked("mount", ["-t", "ext2", device, disk.path])
            return disk
        }

        /// Write requests the device has completed (the fifth field of its stat).
        func writes() throws -> Int {
            let name = (device as NSString).lastPathComponent
            let fields = try String(contentsOfFile: "/sys/block/\(name)/stat", encoding: .utf8).split(separator: " ")
            return try #require(Int(fields[4]))
        }

        func remove() async {
            _ = try? await Tools.run("umount", [path])
            _ = try? await Tools.run("losetup", ["-d", device])
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    @Test("sync export: every kind of change reached the disk before its reply; async export: ten CREATEs write nothing yet")
    func changesReachTheDiskBeforeTheirReplies() async throws {
        let disk = try await CountedDisk.make()
        do {
            try await exercise(disk)
        } catch {
            await disk.remove()
            throw error
        }
        await disk.remove()
    }

    func exercise(_ disk: CountedDisk) async throws {
        let (sync, async) = (disk.path + "/sync", disk.path + "/async")
        for d in [sync, async] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false) }
        try await ServerProcess.with(portmap: .none, configure: { server in
            let exports = server.root.appendingPathComponent("exports").path
            try """
                \(sync) 127.0.0.1(rw,sync,insecure,no_root_squash)
                \(async) 127.0.0.1(rw,async,insecure,no_root_squash)

                """.write(toFile: exports, atomically: true, encoding: .utf8)
            server.exportsFile = exports
        }) { server in
            let client = try await server.nfsClient(machine: "sync")
            let root = try await client.mount(sync)
            var written = try disk.writes()
            func reachedTheDisk(_ change: String) throws {
                let now = try disk.writes()
                #expect(now > written, "\(change) was answered before anything reached the disk")
                written = now
            }
            let file = try #require(try await client.create(root, Array("file".utf8)).object)
            try reachedTheDisk("CREATE")
            let dir = try #require(try await client.mkdir(root, Array("dir".utf8)).object)
            try reachedTheDisk("MKDIR")
            _ = try await client.setattr(file, NFS3SetAttributes(mode: 0o600))
            try reachedTheDisk("SETATTR")
            try await client.rename(root, Array("file".utf8), to: dir, Array("moved".utf8))
            try reachedTheDisk("RENAME")
            try await client.link(file, into: root, Array("again".utf8))
            try reachedTheDisk("LINK")
            _ = try await client.symlink(root, Array("symlink".utf8), to: Array("dir/moved".utf8))
            try reachedTheDisk("SYMLINK")
            try await client.remove(root, Array("again".utf8))
            try reachedTheDisk("REMOVE")
            _ = try await client.mkdir(root, Array("empty".utf8))
            written = try disk.writes()
            try await client.rmdir(root, Array("empty".utf8))
            try reachedTheDisk("RMDIR")

            // An async export answers first: the kernel writes its changes back later.
            let other = try await client.mount(async)
            _ = try await Tools.runChecked("sync", ["-f", async])
            let before = try disk.writes()
            for n in 0..<10 { _ = try await client.create(other, Array("file-\(n)".utf8)) }
            let used = try disk.writes() - before
            #expect(used < 5, "\(used) disk writes for 10 CREATEs on an async export")
        }
    }
}
