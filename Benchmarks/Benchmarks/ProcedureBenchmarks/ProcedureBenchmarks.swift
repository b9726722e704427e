import Benchmark
import BenchmarkSupport
import Foundation
import Glibc
import Logging
import NFS3
@_spi(Benchmarks) import NFS3Server
import NIOCore
import ONCRPC

// Whole procedures as the server runs them for a call that has arrived, without the transport:
// RPC header and credential parsed, arguments decoded, the caller's identity taken on, the
// handle verified, the file system called, the reply encoded. Per call: the CPU that issue 16
// compares between procedures (a 4 KiB WRITE at most twice a GETATTR) and the allocations,
// with thresholds. A plain export on a real directory under /tmp (the file system's own work
// is part of each call: fstat for GETATTR, pread, pwrite, openat and unlinkat).

let base = "/tmp/swiftnfs-bench-procedures-\(getpid())"

func setUp() throws -> (any RPCProgram, NFS3FileHandle, NFS3FileHandle) {
    mkdir(base, 0o700)
    mkdir(base + "/export", 0o755)
    atexit { try? FileManager.default.removeItem(atPath: base) }
    let fd = open(base + "/export/file", O_CREAT | O_WRONLY, 0o644)
    ftruncate(fd, 1 << 20)
    close(fd)
    // The calls' user (AUTH_SYS uid 1000, `benchmarkCredential`) owns the export and the file.
    chown(base + "/export", 1000, 1000)
    chown(base + "/export/file", 1000, 1000)
    let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
    let (program, root) = try standaloneNFS3Program(root: base + "/export", stateDirectory: base + "/state", logger: logger)
    var reply = try call(program, callRecord(.lookup) {
        $0.writeNFS3LookupCall(NFS3LookupCall(what: NFS3DirOpArgs(directory: root, name: Array("file".utf8))))
    })
    guard case .okay(let found) = try reply.readNFS3LookupReply().result else { fatalError("LOOKUP of the benchmark file failed") }
    return (program, root, found.object)
}

let context = RPCCallContext(remoteAddress: try! SocketAddress(ipAddress: "127.0.0.1", port: 700), localAddress: nil,
                             transport: .tcp, credentials: benchmarkCredential)

/// One call through the program; the results of a successful reply.
@inline(__always)
func call(_ program: any RPCProgram, _ record: ByteBuffer) throws -> ByteBuffer {
    let call = try parse(record)
    var out = replyBuffer(xid: call.xid)
    let resultsStart = out.writerIndex
    guard case .success = try program.handle(call, context: context, results: &out) else { fatalError("the call failed") }
    out.moveReaderIndex(to: resultsStart)
    return out
}

/// The NFS status at the start of a reply's results.
@inline(__always)
func status(_ results: ByteBuffer) -> UInt32 { results.getInteger(at: results.readerIndex) ?? .max }

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .swiftNFS(scalingFactor: .kilo)
    let (program, root, file) = try! setUp()

    let getattr = callRecord(.getattr) { $0.writeNFS3GetattrCall(NFS3GetattrCall(object: file)) }
    Benchmark("GETATTR") { benchmark in
        for _ in benchmark.scaledIterations {
            let r = try call(program, getattr)
            precondition(status(r) == 0)
            blackHole(r)
        }
    }

    let read = callRecord(.read) { $0.writeNFS3ReadCall(NFS3ReadCall(file: file, offset: 64 << 10, count: 4096)) }
    Benchmark("READ_4KiB") { benchmark in
        for _ in benchmark.scaledIterations {
            let r = try call(program, read)
            precondition(status(r) == 0)
            blackHole(r)
        }
    }

    var data = ByteBuffer()
    data.writeRepeatingByte(0x5A, count: 4096)
    let write = callRecord(.write) {
        $0.writeNFS3WriteCall(NFS3WriteCall(file: file, offset: 128 << 10, count: 4096, stable: .unstable, data: data))
    }
    Benchmark("WRITE_4KiB_unstable") { benchmark in
        for _ in benchmark.scaledIterations {
            let r = try call(program, write)
            precondition(status(r) == 0)
            blackHole(r)
        }
    }

    // A CREATE and the REMOVE of what it made: the directory stays the same size.
    let name = Array("new-file".utf8)
    let create = callRecord(.create) {
        $0.writeNFS3CreateCall(NFS3CreateCall(where: NFS3DirOpArgs(directory: root, name: name),
                                              how: .guarded(NFS3SetAttributes(mode: 0o644))))
    }
    let remove = callRecord(.remove) { $0.writeNFS3RemoveCall(NFS3RemoveCall(object: NFS3DirOpArgs(directory: root, name: name))) }
    Benchmark("CREATE_and_REMOVE") { benchmark in
        for _ in benchmark.scaledIterations {
            let c = try call(program, create)
            precondition(status(c) == 0)
            let r = try call(program, remove)
            precondition(status(r) == 0)
            blackHole((c, r))
        }
    }
}
