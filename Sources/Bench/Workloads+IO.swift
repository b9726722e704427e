import NFS3
import NFS3Client
import NIOConcurrencyHelpers
import NIOCore

// READ and WRITE: 4 KiB at random block-aligned offsets of a file of `--file-size`, and 1 MiB
// in sequence through a file of `--sequential-file-size`. Every READ is compared with the
// pattern; each writer reads back its last block when it is done.

let smallBlock = 4096
let largeBlock = 1 << 20

/// The next block of a sequential workload, shared by all its workers, wrapping at the end.
final class SequentialCursor: Sendable {
    private let next = NIOLockedValueBox(0)
    let blocks: Int
    init(blocks: Int) { self.blocks = blocks }
    func take() -> Int {
        next.withLockedValue { n in
            defer { n = (n + 1) % blocks }
            return n
        }
    }
}

/// Checks that the server takes transfers of `size` bytes.
func requireTransferSize(_ size: Int, read: Bool, _ session: BenchSession, workload: String) throws {
    let max = Int(read ? session.fsinfo.rtmax : session.fsinfo.wtmax)
    guard max >= size else {
        throw BenchError(.setup, "\(workload) needs \(read ? "READ" : "WRITE")s of \(size) bytes; the server's \(read ? "rtmax" : "wtmax") is \(max)")
    }
}

struct Read4KWorkload: Workload {
    let name = "read4k"
    let summary = "READ of 4 KiB at a random offset of a prepared file, data compared"
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        let content = PatternedFile(pattern: DataPattern(seed: 0x4B), size: session.configuration.fileSize)
        let file = try await session.createFile(in: directory, named: .name("data"))
        try await session.fill(file, with: content)
        let blocks = content.size / smallBlock
        return PreparedByClosure { slot, client in
            RandomReader(client: client, file: file, content: content, blocks: blocks,
                         random: SplitMix64(seed: UInt64(slot) &+ 1))
        }
    }

    struct RandomReader: WorkloadWorker {
        let client: NFS3Client
        let file: NFS3FileHandle
        let content: PatternedFile
        let blocks: Int
        var random: SplitMix64

        mutating func step() async throws -> Int {
            let offset = UInt64(Int.random(in: 0..<blocks, using: &random) * smallBlock)
            let reply = try await client.read(file, offset: offset, count: UInt32(smallBlock))
            try ReplyCheck.read(reply, offset: offset, count: smallBlock, file: content)
            return smallBlock
        }
    }
}

struct Write4KWorkload: Workload {
    let stable: NFS3StableHow
    var name: String { stable == .fileSync ? "write4k-filesync" : "write4k-unstable" }
    var summary: String {
        "WRITE \(stable == .fileSync ? "FILE_SYNC" : "UNSTABLE") of 4 KiB at a random offset; each worker reads its last block back"
    }

    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        let content = PatternedFile(pattern: DataPattern(seed: 0x57), size: session.configuration.fileSize)
        let file = try await session.createFile(in: directory, named: .name("data"))
        let blocks = content.size / smallBlock
        let stable = self.stable
        return PreparedByClosure { slot, client in
            RandomWriter(client: client, file: file, content: content, blocks: blocks, stable: stable,
                         random: SplitMix64(seed: UInt64(slot) &+ 101))
        }
    }

    struct RandomWriter: WorkloadWorker {
        let client: NFS3Client
        let file: NFS3FileHandle
        let content: PatternedFile
        let blocks: Int
        let stable: NFS3StableHow
        var random: SplitMix64
        var lastOffset: UInt64?

        mutating func step() async throws -> Int {
            let offset = UInt64(Int.random(in: 0..<blocks, using: &random) * smallBlock)
            let reply = try await client.write(file, offset: offset, data: content.slice(offset: offset, count: smallBlock),
                                               stable: stable)
            try ReplyCheck.write(reply, count: smallBlock, stable: stable)
            lastOffset = offset
            return smallBlock
        }

        mutating func finish() async throws {
            try await readBack(client, file, content, at: lastOffset, count: smallBlock, commit: stable == .unstable)
        }
    }
}

/// Reads back what a writer wrote last (after a COMMIT when it wrote UNSTABLE). The file may be
/// sparse and end before the pattern does, so eof is not checked here.
func readBack(_ client: NFS3Client, _ file: NFS3FileHandle, _ content: PatternedFile, at offset: UInt64?,
              count: Int, commit: Bool) async throws {
    guard let offset else { return }
    if commit { _ = try await client.commit(file, offset: 0, count: 0) }
    let reply = try await client.read(file, offset: offset, count: UInt32(count))
    guard reply.data.readableBytes == count else {
        throw BenchError(.countMismatch, procedure: "READ", "read back \(reply.data.readableBytes) of \(count) bytes at \(offset)")
    }
    guard reply.data == content.slice(offset: offset, count: count) else {
        throw BenchError(.dataMismatch, procedure: "READ", "read back \(count) bytes at \(offset) differ from what was written")
    }
}

struct Read1MWorkload: Workload {
    let name = "read1m"
    let summary = "READ of 1 MiB, in sequence through a prepared file, data compared"
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        try requireTransferSize(largeBlock, read: true, session, workload: name)
        let content = PatternedFile(pattern: DataPattern(seed: 0x52), size: session.configuration.sequentialFileSize)
        let file = try await session.createFile(in: directory, named: .name("data"))
        try await session.fill(file, with: content)
        let cursor = SequentialCursor(blocks: content.size / largeBlock)
        return PreparedByClosure { _, client in
            CallWorker {
                let offset = UInt64(cursor.take() * largeBlock)
                let reply = try await client.read(file, offset: offset, count: UInt32(largeBlock))
                try ReplyCheck.read(reply, offset: offset, count: largeBlock, file: content)
                return largeBlock
            }
        }
    }
}

/// 1 MiB sequential writes: with `commitEach`, each WRITE is followed by a COMMIT of its range
/// (one operation); without, UNSTABLE WRITEs only, as a client streams a large file, with one
/// COMMIT at the end.
struct Write1MWorkload: Workload {
    let commitEach: Bool
    var name: String { commitEach ? "write1m-commit" : "write1m-unstable" }
    var summary: String {
        commitEach ? "WRITE UNSTABLE of 1 MiB in sequence, then COMMIT of that range (one operation)"
            : "WRITE UNSTABLE of 1 MiB in sequence (COMMIT once at the end, not measured)"
    }
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        try requireTransferSize(largeBlock, read: false, session, workload: name)
        let content = PatternedFile(pattern: DataPattern(seed: 0x43), size: session.configuration.sequentialFileSize)
        let file = try await session.createFile(in: directory, named: .name("data"))
        let cursor = SequentialCursor(blocks: content.size / largeBlock)
        let commitEach = self.commitEach
        return PreparedByClosure { _, client in
            SequentialWriter(client: client, file: file, content: content, cursor: cursor, commitEach: commitEach)
        }
    }

    struct SequentialWriter: WorkloadWorker {
        let client: NFS3Client
        let file: NFS3FileHandle
        let content: PatternedFile
        let cursor: SequentialCursor
        let commitEach: Bool
        var lastOffset: UInt64?

        mutating func step() async throws -> Int {
            let offset = UInt64(cursor.take() * largeBlock)
            let written = try await client.write(file, offset: offset, data: content.slice(offset: offset, count: largeBlock),
                                                 stable: .unstable)
            try ReplyCheck.write(written, count: largeBlock, stable: .unstable)
            if commitEach {
                let committed = try await client.commit(file, offset: offset, count: UInt32(largeBlock))
                try ReplyCheck.commit(committed, writeVerifier: written.verifier)
            }
            lastOffset = offset
            return largeBlock
        }

        mutating func finish() async throws {
            try await readBack(client, file, content, at: lastOffset, count: largeBlock, commit: !commitEach)
        }
    }
}
