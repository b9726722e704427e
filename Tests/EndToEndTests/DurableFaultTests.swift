import Bench
import Foundation
import NFS3
import NIOCore
import NIOPosix
import ONCRPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Failures of the durable side (the EBS volume), made real and leaving what the volume already
/// holds intact: a tmpfs that fills up (ENOSPC at write), a disk whose device runs out of room
/// under its file system (the error comes at fsync), and a disk that stops answering for part of
/// its range (I/O errors). Through the wire: stable WRITEs and COMMIT fail with NFS3ERR_NOSPC or NFS3ERR_IO
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

    /// ext2 on a loop device, failed in one of two ways that leave the data it holds intact:
    /// - `fullBacking`: the device's backing file is on a small tmpfs that another file fills,
    ///   so writes reach the page cache and then fail at fsync (the device reports no space);
    /// - `shrunk`: the device's size limit (LOOP_SET_STATUS64) drops below the blocks in use, so
    ///   reads and writes there fail with I/O errors, as from a disk that stops answering.
    /// Healing undoes it.
    struct FailingDisk: FaultyVolume {
        enum Mode { case fullBacking, shrunk }
        let mode: Mode
        let base: String
        let device: String
        var path: String { base + "/mnt" }
        var backingDirectory: String { base + "/backing" }
        var expectedStatus: String { mode == .fullBacking ? "NFS3ERR_NOSPC" : "NFS3ERR_IO" }

        static func make(_ mode: Mode) async throws -> FailingDisk {
            let base = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-disk-\(UUID().uuidString)").path
            let backing = base + "/backing"
            try FileManager.default.createDirectory(atPath: backing, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: base + "/mnt", withIntermediateDirectories: true)
            _ = try await Tools.runChecked("mount", ["-t", "tmpfs", "-o", "size=24m", "tmpfs", backing])
            // A sparse 64 MiB file on a 24 MiB tmpfs: the file system above it fills little of it.
            _ = try await Tools.runChecked("truncate", ["-s", "64M", backing + "/image"])
            let device = try await Tools.runChecked("losetup", ["-f", "--show", backing + "/image"]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let disk = FailingDisk(mode: mode, base: base, device: device)
            _ = try await Tools.runChecked("mkfs.ext2", ["-q", device])
            _ = try await Tools.runChecked("mount", ["-t", "ext2", "-o", "errors=continue", device, disk.path])
            return disk
        }

        func fail() async throws {
            switch mode {
            case .fullBacking: _ = try await Tools.run("dd", ["if=/dev/zero", "of=\(backingDirectory)/filler", "bs=64k"])
            case .shrunk: try setSizeLimit(1 << 20)
            }
        }

        func heal() async throws {
            switch mode {
            case .fullBacking: try FileManager.default.removeItem(atPath: backingDirectory + "/filler")
            case .shrunk: try setSizeLimit(0)  // no limit: the whole backing file
            }
        }

        /// LOOP_GET_STATUS64 / LOOP_SET_STATUS64 with a new `lo_sizelimit` (struct loop_info64:
        /// five u64 fields, the size limit fifth; 232 bytes in all).
        func setSizeLimit(_ bytes: UInt64) throws {
            let fd = open(device, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw HarnessFailure(description: "open \(device): errno \(errno)") }
            defer { close(fd) }
            var info = [UInt8](repeating: 0, count: 232)
            try info.withUnsafeMutableBytes { raw in
                guard ioctl(fd, 0x4C05, raw.baseAddress!) == 0 else { throw HarnessFailure(description: "LOOP_GET_STATUS64: errno \(errno)") }
                raw.storeBytes(of: bytes.littleEndian, toByteOffset: 32, as: UInt64.self)
                guard ioctl(fd, 0x4C04, raw.baseAddress!) == 0 else { throw HarnessFailure(description: "LOOP_SET_STATUS64: errno \(errno)") }
            }
        }

        func remove() async {
            _ = try? await Tools.run("umount", [path])
            _ = try? await Tools.run("losetup", ["-d", device])
            _ = try? await Tools.run("umount", [backingDirectory])
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    @Test("a full durable volume: NFS3ERR_NOSPC, a new verifier, degraded, recovery")
    func fullVolume() async throws {
        try await exercise(try await FullTmpfs.make())
    }

    @Test("a durable disk whose writes fail at fsync: NFS3ERR_NOSPC, a new verifier, degraded, recovery")
    func diskFailingAtFsync() async throws {
        try await exercise(try await FailingDisk.make(.fullBacking))
    }

    @Test("a durable disk with I/O errors: NFS3ERR_IO, a new verifier, degraded, recovery")
    func diskWithIOErrors() async throws {
        try await exercise(try await FailingDisk.make(.shrunk))
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
        defer { try? FileManager.default.removeItem(at: server.root) }
        server.extraArguments = ["--durable-dir", durable, "--journal-flush-ms", "100", "--checkpoint-seconds", "1"]
        try await server.start()
        do {
            try await exercise(volume, server, durable: durable)
        } catch {
            Issue.record("server log:\n\(server.logTail(lines: 60))")
            try? await server.stop()
            throw error
        }
        try await server.stop()
    }

    func exercise(_ volume: some FaultyVolume, _ server: ServerProcess, durable: String) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var client = try await connect(server, group)
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
            } catch let e as BenchError where e.code == .status {
                refused = e.detail
                break
            }
        }
        #expect(refused == volume.expectedStatus, "a FILE_SYNC WRITE while the volume fails: \(refused ?? "always NFS3_OK")")
        // UNSTABLE writes go on (they are only in memory until COMMIT); COMMIT fails too.
        _ = try await client.write(file, offset: UInt64(200 * Self.chunk), data: ByteBuffer(bytes: chunkData(200, 1)), stable: .unstable)
        await #expect(throws: BenchError.self, "COMMIT while the volume fails") {
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
        for name in try FileManager.default.contentsOfDirectory(atPath: server.exportPath) {
            try FileManager.default.removeItem(atPath: server.exportPath + "/" + name)
        }
        try await server.start()
        client = try await connect(server, group)
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

    func connect(_ server: ServerProcess, _ group: EventLoopGroup) async throws -> BenchNFSClient {
        try await BenchNFSClient.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
            credentials: .sys(AuthSysParameters(machineName: "faults", uid: 0, gid: 0)),
            timeout: .seconds(20), group: group)
    }
}
