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

/// Failures of the durable side (the EBS volume), leaving what the volume already holds intact:
/// a tmpfs that fills up (ENOSPC at write), a disk whose device runs out of room under its file
/// system (the error comes at fsync), and journal writes and fsyncs that fail with EIO (injected:
/// see `InjectedIOErrors`). Through the wire: stable WRITEs and COMMIT fail with NFS3ERR_NOSPC or NFS3ERR_IO
/// instead of pretending, the write verifier changes, `swiftnfsd status` says "degraded", the
/// server recovers by itself once the volume works again, and everything it acknowledged as
/// stable survives a SIGKILL and the loss of the served tree.
@Suite("Durable-side faults", .serialized,
       .enabled(if: getuid() == 0, "needs root: mounts a tmpfs and a loop device"))
struct DurableFaultTests {
    /// A durable volume that can be made to fail and be healed.
    protocol FaultyVolume {
        var path: String { get }
        /// The nfsstat3 that stable writes get while it fails.
        var expectedStatus: String { get }
        func fail() async throws
        func heal() async throws
        func remove() async
        /// What the server's environment needs for the failure to reach it.
        var serverEnvironment: [String: String] { get }
    }

    /// A small tmpfs; failing = another file takes all its space (the volume is full).
    struct FullTmpfs: FaultyVolume {
        let path: String
        var expectedStatus: String { "NFS3ERR_NOSPC" }
        var filler: String { path + "/filler" }

        static func make() async throws -> FullTmpfs {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-durable-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            _ = try await Tools.runChecked("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", path])
            return FullTmpfs(path: path)
        }

        func fail() async throws {
            // dd stops with ENOSPC (a non-zero exit) once the tmpfs is full.
            _ = try await Tools.run("dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
        }

        func heal() async throws { try FileManager.default.removeItem(atPath: filler) }

        func remove() async {
            _ = try? await Tools.run("umount", [path])
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// ext2 on a loop device whose backing file is on a small tmpfs that another file fills, so
    /// writes reach the page cache and then fail at fsync (the device reports no space). The
    /// blocks the file system already holds stay readable and writable: the volume stays sound.
    struct FailingDisk: FaultyVolume {
        let base: String
        let device: String
        var path: String { base + "/mnt" }
        var backingDirectory: String { base + "/backing" }
        var expectedStatus: String { "NFS3ERR_NOSPC" }

        static func make() async throws -> FailingDisk {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-disk-\(UUID().uuidString)").path
            let backing = base + "/backing"
            try FileManager.default.createDirectory(atPath: backing, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: base + "/mnt", withIntermediateDirectories: true)
            _ = try await Tools.runChecked("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", backing])
            // A sparse 64 MiB file on a 24 MiB tmpfs: the file system above it fills little of it.
            _ = try await Tools.runChecked("truncate", ["-s", "64M", backing + "/image"])
            let device = try await Tools.runChecked("losetup", ["-f", "--show", backing + "/image"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let disk = FailingDisk(base: base, device: device)
            _ = try await Tools.runChecked("mkfs.ext2", ["-q", device])
            _ = try await Tools.runChecked("mount", ["-t", "ext2", "-o", "errors=continue", device, disk.path])
            return disk
        }

        func fail() async throws {
            _ = try await Tools.run("dd", ["if=/dev/zero", "of=\(backingDirectory)/filler", "bs=64k"])
        }

        func heal() async throws { try FileManager.default.removeItem(atPath: backingDirectory + "/filler") }

        func remove() async {
            _ = try? await Tools.run("umount", [path])
            _ = try? await Tools.run("losetup", ["-d", device])
            _ = try? await Tools.run("umount", [backingDirectory])
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    /// A durable directory whose journal writes and fsyncs fail with EIO while a trigger file
    /// exists (`SWIFTNFS_JOURNAL_FAULT`, see `JournalFaults`): I/O errors as from a disk that
    /// stops answering and comes back. A real block device returning EIO also damages the file
    /// system mounted on it (lost metadata writes, EUCLEAN after it heals), which is the file
    /// system's failure, not the server's.
    struct InjectedIOErrors: FaultyVolume {
        let base: String
        var path: String { base + "/volume" }
        var trigger: String { base + "/fail" }
        var expectedStatus: String { "NFS3ERR_IO" }
        var serverEnvironment: [String: String] { ["SWIFTNFS_JOURNAL_FAULT": trigger] }

        static func make() throws -> InjectedIOErrors {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-eio-\(UUID().uuidString)").path
            let volume = InjectedIOErrors(base: base)
            try FileManager.default.createDirectory(atPath: volume.path, withIntermediateDirectories: true)
            return volume
        }

        func fail() async throws { _ = FileManager.default.createFile(atPath: trigger, contents: nil) }
        func heal() async throws { try FileManager.default.removeItem(atPath: trigger) }
        func remove() async { try? FileManager.default.removeItem(atPath: base) }
    }

    @Test("a full durable volume: NFS3ERR_NOSPC, a new verifier, degraded, recovery")
    func fullVolume() async throws {
        try await exercise(try await FullTmpfs.make())
    }

    @Test("a durable disk whose writes fail at fsync: NFS3ERR_NOSPC, a new verifier, degraded, recovery")
    func diskFailingAtFsync() async throws {
        try await exercise(try await FailingDisk.make())
    }

    @Test("journal writes and fsyncs failing with EIO: NFS3ERR_IO, a new verifier, degraded, recovery")
    func journalIOErrors() async throws {
        try await exercise(try InjectedIOErrors.make())
    }

    static let chunk = 64 << 10

    /// Runs the scenario on `volume`, and removes the volume whatever happens.
    func exercise(_ volume: some FaultyVolume) async throws {
        do {
            try await exercise(volume, durable: volume.path + "/durable")
        } catch {
            await volume.remove()
            throw error
        }
        await volume.remove()
    }

    func exercise(_ volume: some FaultyVolume, durable: String) async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        server.extraArguments = ["--durable-dir", durable, "--journal-flush-ms", "100", "--checkpoint-seconds", "1"]
        server.environment = volume.serverEnvironment
        try await server.start()
        try await server.logged {
            try await exercise(volume, server, durable: durable)
        }
        try await server.stop()
    }

    func exercise(_ volume: some FaultyVolume, _ server: ServerProcess, durable: String) async throws {
        var client = try await server.nfsClient(machine: "faults")
        var root = try await client.mount(server.exportPath)
        let file = try #require(try await client.create(root, Array("data".utf8)).object)
        // What the server acknowledged as stable, by chunk index.
        var acknowledged: [Int: [UInt8]] = [:]
        func chunkData(_ i: Int, _ round: UInt8) -> [UInt8] {
            (0..<Self.chunk).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7) ^ round }
        }

        let first = try await client.write(file, offset: 0, data: ByteBuffer(bytes: chunkData(0, 1)), stable: .fileSync)
        acknowledged[0] = chunkData(0, 1)
        let verifierBefore = first.verifier

        // The volume fails: stable writes are refused with the right status, never acknowledged.
        try await volume.fail()
        var refused: String?
        for i in 1...96 {
            do {
                _ = try await client.write(file, offset: UInt64(i * Self.chunk), data: ByteBuffer(bytes: chunkData(i, 1)), stable: .fileSync)
                acknowledged[i] = chunkData(i, 1)
            } catch let e as NFS3ClientError where e.code == .status {
                refused = e.detail
                break
            }
        }
        #expect(refused == volume.expectedStatus, "a FILE_SYNC WRITE while the volume fails: \(refused ?? "always NFS3_OK")")
        // UNSTABLE writes go on (they are only in memory until COMMIT); COMMIT fails too.
        _ = try await client.write(file, offset: UInt64(200 * Self.chunk), data: ByteBuffer(bytes: chunkData(200, 1)), stable: .unstable)
        await #expect(throws: NFS3ClientError.self, "COMMIT while the volume fails") {
            _ = try await client.commit(file, offset: 0, count: 0)
        }
        let failing = try await status(server, durable, becomes: "degraded:       YES")
        #expect(failing.shows, "swiftnfsd status while the volume fails:\n\(failing.text)")

        // Healed: the server recovers by itself (the next stable write or the background flush
        // writes the journal again), with a new write verifier.
        try await volume.heal()
        var recovered: NFS3WriteOkay?
        for attempt in 0..<100 where recovered == nil {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(100)) }
            recovered = try? await client.write(file, offset: UInt64(100 * Self.chunk), data: ByteBuffer(bytes: chunkData(100, 2)), stable: .fileSync)
        }
        let after = try #require(recovered, "no stable write succeeded within 10 s of the volume working again")
        acknowledged[100] = chunkData(100, 2)
        #expect(after.verifier != verifierBefore, "the write verifier did not change across the failure")
        let commit = try await client.commit(file, offset: 0, count: 0)
        #expect(commit.verifier == after.verifier)
        acknowledged[200] = chunkData(200, 1)  // committed now, under the new verifier
        let healthy = try await status(server, durable, becomes: "degraded:       no")
        #expect(healthy.shows, "swiftnfsd status after the volume recovered:\n\(healthy.text)")
        await client.close()

        // Nothing acknowledged is lost: SIGKILL, the served tree gone, rebuilt from the volume.
        try await server.kill()
        try server.wipeExport()
        try await server.start()
        client = try await server.nfsClient(machine: "faults")
        root = try await client.mount(server.exportPath)
        let content = try await client.readAll(file)
        for (i, data) in acknowledged.sorted(by: { $0.key < $1.key }) {
            let range = (i * Self.chunk)..<((i + 1) * Self.chunk)
            #expect(content.count >= range.upperBound && Array(content[range]) == data,
                    "chunk \(i), acknowledged as stable, is not intact after the rebuild")
        }
        _ = root
        await client.close()
    }

    /// `swiftnfsd status` until it shows `line` (the server publishes it every flush interval),
    /// for at most 5 s.
    func status(_ server: ServerProcess, _ durable: String, becomes line: String) async throws -> (shows: Bool, text: String) {
        var text = ""
        for attempt in 0..<50 {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(100)) }
            text = try await Tools.runChecked(server.binary.path, ["status", "--durable-dir", durable]).stdout
            if text.contains(line) { return (true, text) }
        }
        return (false, text)
    }

}

extension DurableFaultTests.FaultyVolume {
    var serverEnvironment: [String: String] { [:] }
}
