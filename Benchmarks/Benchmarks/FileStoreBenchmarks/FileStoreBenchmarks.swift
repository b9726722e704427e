import Benchmark
import BenchmarkSupport
import FileStore
import Foundation
import Glibc
import Logging
import NIOCore

// Handle verification (every call that names a file starts with it), attribute lookup by
// file id alone and from several tasks at once (the thread pool's view of the store, and of
// the handle cache's shard locks), and READ and WRITE of 4 KiB through cached descriptors.

/// Where this process keeps its store; removed when the process exits.
let storeBase = "/tmp/swiftnfs-bench-store-\(getpid())"

/// A fresh export with `files` empty files, and the store over it.
func makeStore(files: Int) throws -> (FileStore, [UInt64]) {
    let export = storeBase + "/export"
    mkdir(storeBase, 0o700)
    mkdir(export, 0o755)
    atexit { try? FileManager.default.removeItem(atPath: storeBase) }
    for i in 0..<files { close(open(export + "/f\(i)", O_CREAT | O_WRONLY, 0o644)) }
    let key = SipHash24(key: Array(0..<16))
    let store = try FileStore(root: export, stateDirectory: storeBase + "/state", exportID: 1, handleKey: key,
                              logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
    let ids = try (0..<files).map { try store.lookup(FileStore.rootID, name: Array("f\($0)".utf8)).fileID }
    return (store, ids)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .swiftNFS(scalingFactor: .kilo)

    let key = SipHash24(key: Array(0..<16))
    let good = FileHandleFormat(exportID: 1, fileID: 4242).bytes(key: key)
    var forged = good
    forged[12] ^= 1

    Benchmark("handle_verification_valid") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(FileHandleFormat(bytes: good, key: key)) }
    }

    Benchmark("handle_verification_forged_rejected") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(FileHandleFormat(bytes: forged, key: key)) }
    }

    let (store, ids) = try! makeStore(files: 64)

    Benchmark("attributes_by_file_id_1_task") { benchmark in
        for i in benchmark.scaledIterations { blackHole(try store.attributes(of: ids[i % ids.count])) }
    }

    Benchmark("attributes_by_file_id_4_tasks_at_once") { benchmark in
        let perTask = benchmark.scaledIterations.count / 4
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in 0..<perTask { blackHole(try store.attributes(of: ids[(i * 4 + t) % ids.count])) }
                }
            }
            try await group.waitForAll()
        }
    }

    // Every task on the same four files: the same shards, the same entries.
    Benchmark("handle_cache_hit_4_tasks_same_files") { benchmark in
        let perTask = benchmark.scaledIterations.count / 4
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for i in 0..<perTask { blackHole(try store.attributes(of: ids[i % 4])) }
                }
            }
            try await group.waitForAll()
        }
    }

    let block = ByteBuffer(repeating: 0x5a, count: 4096)
    let allocator = ByteBufferAllocator()

    Benchmark("read_4KiB_cached_descriptor") { benchmark in
        _ = try store.write(ids[0], offset: 0, data: block, durability: .unstable)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try store.read(ids[0], offset: 0, count: 4096, allocator: allocator))
        }
    }

    Benchmark("write_4KiB_unstable_cached_descriptor") { benchmark in
        _ = try store.write(ids[1], offset: 0, data: block, durability: .unstable)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try store.write(ids[1], offset: 0, data: block, durability: .unstable))
        }
    }

    Benchmark("handle_to_attributes_verify_and_lookup") { benchmark in
        let handles = ids.map { store.handle(for: $0) }
        benchmark.startMeasurement()
        for i in benchmark.scaledIterations {
            let id = try store.fileID(fromHandle: handles[i % handles.count])
            blackHole(try store.attributes(of: id))
        }
    }
}
