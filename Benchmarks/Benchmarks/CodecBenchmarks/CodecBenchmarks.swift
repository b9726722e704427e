import Benchmark
import BenchmarkSupport
import NFS3
import NIOCore
import ONCRPC
import XDR

// The server's per-call codec work for the four hottest procedures: parse the RPC header and
// AUTH_SYS credential, decode the arguments, encode the reply header and results. READ and
// WRITE carry 4 KiB; their data must travel as slices, not copies, so mallocs stay constant.

let handle = NFS3FileHandle(Array(0..<25))
let time = NFS3Time(seconds: 1_700_000_000, nanoseconds: 123)
let attributes = NFS3FileAttributes(type: .regular, mode: 0o644, nlink: 1, uid: 1000, gid: 1000, size: 1 << 20,
                                    used: 1 << 20, rdev: NFS3SpecData(), fsid: 1, fileid: 42,
                                    atime: time, mtime: time, ctime: time)
let payload: ByteBuffer = {
    var b = ByteBuffer()
    b.writeRepeatingByte(0x5A, count: 4096)
    b.reserveCapacity(4096 + 3)
    return b
}()

let entries: [NFS3ReaddirplusEntry] = (0..<64).map { i in
    NFS3ReaddirplusEntry(fileid: UInt64(1000 + i), name: Array("src-file-\(i).c".utf8), cookie: UInt64(i + 1),
                         attributes: attributes, handle: handle)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .swiftNFS(scalingFactor: .kilo)

    let getattr = callRecord(.getattr) { $0.writeNFS3GetattrCall(NFS3GetattrCall(object: handle)) }
    Benchmark("GETATTR_call_decode_and_reply_encode") { benchmark in
        for _ in benchmark.scaledIterations {
            let call = try parse(getattr)
            var args = call.arguments
            let decoded = try args.readNFS3GetattrCall()
            var out = replyBuffer(xid: call.xid)
            out.writeNFS3GetattrReply(NFS3GetattrReply(result: .okay(attributes)))
            blackHole((decoded, out))
        }
    }

    let read = callRecord(.read) { $0.writeNFS3ReadCall(NFS3ReadCall(file: handle, offset: 1 << 20, count: 4096)) }
    Benchmark("READ_4KiB_call_decode_and_reply_encode") { benchmark in
        for _ in benchmark.scaledIterations {
            let call = try parse(read)
            var args = call.arguments
            let decoded = try args.readNFS3ReadCall()
            var out = replyBuffer(xid: call.xid)
            let data = out.writeNFS3ReadReplyPartially(NFS3ReadReply(result: .okay(
                NFS3ReadOkay(attributes: attributes, eof: false, data: payload))))
            blackHole((decoded, out, data))
        }
    }

    let write = callRecord(.write) {
        $0.writeNFS3WriteCall(NFS3WriteCall(file: handle, offset: 1 << 20, count: 4096, stable: .unstable, data: payload))
    }
    let wcc = NFS3WCCData(before: NFS3WCCAttributes(size: 1 << 20, mtime: time, ctime: time), after: attributes)
    Benchmark("WRITE_4KiB_call_decode_and_reply_encode") { benchmark in
        for _ in benchmark.scaledIterations {
            let call = try parse(write)
            var args = call.arguments
            let decoded = try args.readNFS3WriteCall()
            var out = replyBuffer(xid: call.xid)
            out.writeNFS3WriteReply(NFS3WriteReply(result: .okay(
                NFS3WriteOkay(wcc: wcc, count: decoded.count, committed: .unstable, verifier: NFS3Verifier(1)))))
            blackHole((decoded, out))
        }
    }

    let readdirplus = callRecord(.readdirplus) {
        $0.writeNFS3ReaddirplusCall(NFS3ReaddirplusCall(directory: handle, cookie: 0, cookieVerifier: .zero,
                                                        dirCount: 16384, maxCount: 131_072))
    }
    Benchmark("READDIRPLUS_64_entries_call_decode_and_reply_encode") { benchmark in
        for _ in benchmark.scaledIterations {
            let call = try parse(readdirplus)
            var args = call.arguments
            let decoded = try args.readNFS3ReaddirplusCall()
            var out = replyBuffer(xid: call.xid)
            out.writeNFS3ReaddirplusReply(NFS3ReaddirplusReply(result: .okay(NFS3ReaddirplusOkay(
                directoryAttributes: attributes, cookieVerifier: NFS3Verifier(3), entries: entries, eof: false))))
            blackHole((decoded, out))
        }
    }

    // What a client (the `swiftnfsd bench` load generator, for one) pays per page.
    var readdirplusReply = ByteBuffer()
    readdirplusReply.writeNFS3ReaddirplusReply(NFS3ReaddirplusReply(result: .okay(NFS3ReaddirplusOkay(
        directoryAttributes: attributes, cookieVerifier: NFS3Verifier(3), entries: entries, eof: false))))
    let page = readdirplusReply
    Benchmark("READDIRPLUS_64_entries_reply_decode_by_a_client") { benchmark in
        for _ in benchmark.scaledIterations {
            var b = page
            blackHole(try b.readNFS3ReaddirplusReply())
        }
    }
}
