import Benchmark
import BenchmarkSupport
import Dispatch
import NIOCore
import NIOPosix
import ONCRPC
import RPCTransport

// Record reassembly (RFC 5531 §11), the duplicate request cache (DRC), and the hand-off of
// blocking calls from an event loop to a pool's thread.
// Names have no spaces: package-benchmark finds a threshold file by the plain name.

/// `length` bytes sent as `fragments` record-marked fragments.
func stream(length: Int, fragments: Int) -> ByteBuffer {
    var b = ByteBuffer()
    let piece = length / fragments
    for i in 0..<fragments {
        let size = i == fragments - 1 ? length - piece * (fragments - 1) : piece
        b.writeInteger((i == fragments - 1 ? RecordMarking.lastFragmentBit : 0) | UInt32(size))
        b.writeRepeatingByte(UInt8(truncatingIfNeeded: i), count: size)
    }
    return b
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .swiftNFS(scalingFactor: .one)

    for (name, length, fragments, scale) in [("record_reassembly_128B_in_1_fragment", 128, 1, BenchmarkScalingFactor.kilo),
                                             ("record_reassembly_4KiB_in_1_fragment", 4200, 1, .kilo),
                                             ("record_reassembly_1MiB_in_1_fragment", 1 << 20, 1, .one),
                                             ("record_reassembly_1MiB_in_64_fragments", 1 << 20, 64, .one)] {
        let bytes = stream(length: length, fragments: fragments)
        Benchmark(name, configuration: .swiftNFS(scalingFactor: scale)) { benchmark in
            var decoder = RPCRecordDecoder()
            for _ in benchmark.scaledIterations {
                var input = bytes
                blackHole(try decoder.nextRecord(from: &input))
            }
        }
    }

    let client = try! SocketAddress(ipAddress: "192.0.2.10", port: 871)
    let reply = RPCDispatcher.errorReply(xid: 1, .systemErr, allocator: ByteBufferAllocator())
    var arguments = ByteBuffer()
    arguments.writeRepeatingByte(7, count: 160)
    let template = RPCCall(xid: 0, program: 100_003, version: 3, procedure: 8, arguments: arguments)

    Benchmark("DRC_new_call_key_begin_complete", configuration: .swiftNFS(scalingFactor: .kilo)) { benchmark in
        let cache = DuplicateRequestCache(capacity: 16_384)
        var call = template
        for i in benchmark.scaledIterations {
            call.xid = UInt32(truncatingIfNeeded: i)
            let key = DuplicateRequestCache.Key(call: call, client: client)
            blackHole(cache.begin(key, waiter: nil))
            cache.complete(key, reply: reply)
        }
    }

    Benchmark("DRC_retransmission_answered_from_cache", configuration: .swiftNFS(scalingFactor: .kilo)) { benchmark in
        let cache = DuplicateRequestCache(capacity: 16_384)
        let key = DuplicateRequestCache.Key(call: template, client: client)
        _ = cache.begin(key, waiter: nil)
        cache.complete(key, reply: reply)
        for _ in benchmark.scaledIterations {
            blackHole(cache.begin(DuplicateRequestCache.Key(call: template, client: client), waiter: nil))
        }
    }

    // A burst of 16 calls handed to a pool at once (one connection at 16 in flight), waited
    // for, per iteration: what the hand-off costs the server (the wall clock shows the thread
    // wake-ups; NIOThreadPool wakes one thread per call, CallPool one per core).
    let pool = CallPool(threads: 16, awakeLimit: 2)
    pool.start()
    let nioPool = NIOThreadPool(numberOfThreads: 16)
    nioPool.start()
    for (name, executor) in [("hand_off_16_calls_CallPool", pool as any RPCCallExecutor),
                             ("hand_off_16_calls_NIOThreadPool", nioPool)] {
        Benchmark(name, configuration: .swiftNFS(scalingFactor: .one)) { benchmark in
            let done = DispatchSemaphore(value: 0)
            for _ in benchmark.scaledIterations {
                for _ in 0..<16 {
                    executor.run { _ in done.signal() }
                }
                for _ in 0..<16 { done.wait() }
            }
        }
    }
}
