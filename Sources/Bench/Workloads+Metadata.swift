import NFS3
import NFS3Client
import NIOCore

// CREATE+REMOVE, READDIRPLUS of a 10,000-entry directory, and a mix of metadata calls like a
// build tree's.

struct CreateRemoveWorkload: Workload {
    let name = "create-remove"
    let summary = "CREATE (guarded) of a new file, then REMOVE of it (one operation)"
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        PreparedByClosure { slot, client in CreateRemover(client: client, directory: directory, slot: slot) }
    }

    struct CreateRemover: WorkloadWorker {
        let client: NFS3Client
        let directory: NFS3FileHandle
        let slot: Int
        var serial = 0

        mutating func step() async throws -> Int {
            serial += 1
            let name: [UInt8] = .name("cr-\(slot)-\(serial)")
            let created = try await client.create(directory, name)
            try ReplyCheck.attributes(created.attributes, type: .regular, procedure: .create)
            try await client.remove(directory, name)
            return 0
        }
    }
}

/// READDIRPLUS sizes as the Linux client sends them: dircount is an eighth of maxcount.
enum ListingSize {
    static let maxCount: UInt32 = 128 * 1024
    static let dirCount: UInt32 = maxCount / 8
    /// More pages than any listing of the benchmark's directories needs: a server that never
    /// says eof is an error, not a hang.
    static let maxPages = 100_000
}

struct Readdirplus10KWorkload: Workload {
    static let entries = 10_000
    static let prefix: [UInt8] = .name("e-")
    static let directoryName: [UInt8] = .name("readdirplus-10k")

    let name = "readdirplus-10k"
    let summary = "READDIRPLUS of a whole 10,000-entry directory, every page (one operation); names checked"

    static func entryName(_ i: Int) -> [UInt8] {
        let digits = String(i)
        return prefix + .name(String(repeating: "0", count: max(0, 5 - digits.count)) + digits)
    }

    /// The directory is kept between runs under the bench directory; here it is checked and
    /// repaired (missing entries created, strangers removed).
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        let cached = try await session.directory(named: Self.directoryName, in: session.benchDirectory)
        let listed = try await session.list(cached)
        var check = ListingCheck(prefix: Self.prefix, expected: Self.entries)
        var strangers: [[UInt8]] = []
        for entry in listed where !ListingCheck.isDotOrDotDot(entry.name) {
            do { try check.add(name: entry.name) } catch { strangers.append(entry.name) }
        }
        let missing = check.missing
        if !missing.isEmpty || !strangers.isEmpty {
            session.note("preparing \(Self.entries)-entry directory: \(missing.count) to create, \(strangers.count) to remove")
        }
        try await session.concurrently(missing) { client, i in
            do {
                _ = try await client.create(cached, Self.entryName(i))
            } catch let e as NFS3ClientError where e.status == .exist {}
        }
        try await session.concurrently(strangers) { client, name in try await session.removeTree(name, in: cached, using: client) }
        return PreparedByClosure { _, client in
            CallWorker {
                var check = ListingCheck(prefix: Self.prefix, expected: Self.entries)
                try await forEachPage(of: cached, client: client) { entry in try check.add(name: entry.name) }
                try check.finish()
                return 0
            }
        }
    }
}

/// Lists a whole directory with READDIRPLUS, page by page, cookie after cookie.
func forEachPage(of directory: NFS3FileHandle, client: NFS3Client,
                 _ body: (NFS3ReaddirplusEntry) throws -> Void) async throws {
    var cookie: UInt64 = 0
    var verifier = NFS3Verifier.zero
    for _ in 0..<ListingSize.maxPages {
        let page = try await client.readdirplus(directory, cookie: cookie, verifier: verifier,
                                                dirCount: ListingSize.dirCount, maxCount: ListingSize.maxCount)
        for entry in page.entries { try body(entry) }
        if page.eof { return }
        guard let last = page.entries.last else {
            throw BenchError(.unexpectedReply, procedure: "READDIRPLUS", "a page with no entries and no eof")
        }
        cookie = last.cookie
        verifier = page.cookieVerifier
    }
    throw BenchError(.unexpectedReply, procedure: "READDIRPLUS", "no eof after \(ListingSize.maxPages) pages")
}

/// A build tree's metadata traffic: mostly LOOKUP, GETATTR and ACCESS of existing files, some
/// CREATE, WRITE, SETATTR and REMOVE of each worker's own files, and a READDIRPLUS now and then.
/// One operation is one call.
struct MixedMetadataWorkload: Workload {
    static let sharedFiles = 200
    /// Own files a worker keeps at most; it removes before it creates more.
    static let ownFiles = 32

    enum Operation: CaseIterable {
        case lookup, getattr, access, create, write, setattr, readdirplus, remove

        /// Percent of operations.
        var weight: Int {
            switch self {
            case .lookup: return 30
            case .getattr: return 20
            case .access: return 10
            case .create: return 10
            case .write: return 10
            case .setattr: return 5
            case .readdirplus: return 5
            case .remove: return 10
            }
        }

        static func pick(_ roll: Int) -> Operation {
            var left = roll
            for op in allCases {
                if left < op.weight { return op }
                left -= op.weight
            }
            return .lookup
        }
    }

    let name = "mixed-metadata"
    let summary = "build-tree mix: 30% LOOKUP, 20% GETATTR, 10% ACCESS, 10% CREATE, 10% WRITE 4 KiB, 5% SETATTR, 5% READDIRPLUS, 10% REMOVE"

    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload {
        let tree = try await session.directory(named: .name("tree"), in: directory)
        let names = (0..<Self.sharedFiles).map { [UInt8].name("src-\($0).c") }
        let handles = try await session.concurrently(names) { client, name in
            try await session.createFile(in: tree, named: name, using: client)
        }
        let shared = Array(zip(names, handles))
        let content = PatternedFile(pattern: DataPattern(seed: 0x4D), size: smallBlock)
        return PreparedByClosure { slot, client in
            MixedWorker(client: client, tree: tree, shared: shared, content: content, slot: slot,
                        random: SplitMix64(seed: UInt64(slot) &+ 1_001))
        }
    }

    struct MixedWorker: WorkloadWorker {
        let client: NFS3Client
        let tree: NFS3FileHandle
        let shared: [([UInt8], NFS3FileHandle)]
        let content: PatternedFile
        let slot: Int
        var random: SplitMix64
        var own: [([UInt8], NFS3FileHandle)] = []
        var serial = 0

        mutating func step() async throws -> Int {
            var op = Operation.pick(Int.random(in: 0..<100, using: &random))
            if op == .remove && own.isEmpty { op = .create }
            if op == .create && own.count >= MixedMetadataWorkload.ownFiles { op = .remove }
            let (sharedName, sharedHandle) = shared.randomElement(using: &random)!
            switch op {
            case .lookup:
                let found = try await client.lookup(tree, sharedName)
                try ReplyCheck.attributes(found.objectAttributes, type: .regular, procedure: .lookup)
            case .getattr:
                try ReplyCheck.attributes(try await client.getattr(sharedHandle), type: .regular, procedure: .getattr)
            case .access:
                let mask = NFS3AccessMask.read | NFS3AccessMask.modify
                try ReplyCheck.access(try await client.access(sharedHandle, mask: mask), asked: mask, required: mask)
            case .create:
                serial += 1
                let name: [UInt8] = .name("obj-\(slot)-\(serial).o")
                let created = try await client.create(tree, name)
                try ReplyCheck.attributes(created.attributes, type: .regular, procedure: .create)
                // post_op_fh3 may be absent; a client then looks the name up.
                var handle = created.object
                if handle == nil { handle = try await client.lookup(tree, name).object }
                own.append((name, handle!))
            case .write:
                let handle = own.last?.1 ?? sharedHandle
                let reply = try await client.write(handle, offset: 0, data: content.slice(offset: 0, count: smallBlock),
                                                   stable: .unstable)
                try ReplyCheck.write(reply, count: smallBlock, stable: .unstable)
                return smallBlock
            case .setattr:
                let handle = own.randomElement(using: &random)?.1 ?? sharedHandle
                _ = try await client.setattr(handle, NFS3SetAttributes(mode: 0o644, mtime: .serverTime))
            case .readdirplus:
                let page = try await client.readdirplus(tree, cookie: 0, verifier: .zero, dirCount: 4096, maxCount: 32 * 1024)
                guard !page.entries.isEmpty || page.eof else {
                    throw BenchError(.unexpectedReply, procedure: "READDIRPLUS", "first page empty without eof")
                }
            case .remove:
                let index = Int.random(in: 0..<own.count, using: &random)
                let (name, _) = own.remove(at: index)
                try await client.remove(tree, name)
            }
            return 0
        }

        mutating func finish() async throws {
            for (name, _) in own { try await client.remove(tree, name) }
            own.removeAll()
        }
    }
}
