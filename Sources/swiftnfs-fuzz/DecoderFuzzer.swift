import Mount
import NFS3
import NIOCore
import NLM
import ONCRPC
import Portmap
import XDR

// A fuzz target for everything that parses bytes from the network: RPC record marking, the RPC
// header and credentials, and the arguments of every NFSv3, MOUNT, NLM, NSM and portmap procedure (plus
// the NFSv3 replies our own client reads). Built for libFuzzer with
//     swift build --product swiftnfs-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING
// Without FUZZING it is a replayer: `swiftnfs-fuzz FILE...` runs each file through the same
// function (the regression tests use it on every crash ever found, kept in Tests/FuzzCorpus).

/// Runs one input through every decoder. Any outcome but a crash (or a hang) is fine.
func fuzzDecoders(_ bytes: UnsafeRawBufferPointer) {
    let input = ByteBuffer(bytes: bytes)

    // 1. The input as a TCP byte stream: records, then each record as a call.
    var stream = input
    var decoder = RPCRecordDecoder(maxRecordSize: 1 << 16, maxFragments: 64)
    var records = 0
    while records < 64, let record = try? decoder.nextRecord(from: &stream) {
        decodeMessage(record)
        records += 1
    }
    // 2. The input as one UDP datagram.
    decodeMessage(input)
    // 3. The input as the arguments of every procedure, with the first byte choosing nothing:
    //    each decoder sees the same bytes.
    decodeArguments(input)
}

func decodeMessage(_ record: ByteBuffer) {
    var r = record
    guard let incoming = try? r.readRPCMessage() else { return }
    switch incoming {
    case .call(let call):
        _ = RPCCredentials.decode(call.credential)
        decodeArguments(call.arguments)
    case .reply(_, var body):
        _ = try? body.readRPCReplyStatus()
    case .wrongRPCVersion:
        break
    }
}

func decodeArguments(_ arguments: ByteBuffer) {
    func attempt<T>(_ body: (inout ByteBuffer) throws -> T) {
        var b = arguments
        _ = try? body(&b)
    }
    attempt { try $0.readNFS3GetattrCall() }
    attempt { try $0.readNFS3SetattrCall() }
    attempt { try $0.readNFS3LookupCall() }
    attempt { try $0.readNFS3AccessCall() }
    attempt { try $0.readNFS3ReadlinkCall() }
    attempt { try $0.readNFS3ReadCall() }
    attempt { try $0.readNFS3WriteCall() }
    attempt { try $0.readNFS3CreateCall() }
    attempt { try $0.readNFS3MkdirCall() }
    attempt { try $0.readNFS3SymlinkCall() }
    attempt { try $0.readNFS3MknodCall() }
    attempt { try $0.readNFS3RemoveCall() }
    attempt { try $0.readNFS3RmdirCall() }
    attempt { try $0.readNFS3RenameCall() }
    attempt { try $0.readNFS3LinkCall() }
    attempt { try $0.readNFS3ReaddirCall() }
    attempt { try $0.readNFS3ReaddirplusCall() }
    attempt { try $0.readNFS3FsstatCall() }
    attempt { try $0.readNFS3FsinfoCall() }
    attempt { try $0.readNFS3PathconfCall() }
    attempt { try $0.readNFS3CommitCall() }
    attempt { try $0.readNFS3ReadReply() }
    attempt { try $0.readNFS3ReaddirReply() }
    attempt { try $0.readNFS3ReaddirplusReply() }
    attempt { try $0.readNFS3LookupReply() }
    attempt { try $0.readMountPath() }
    attempt { try $0.readMountResult3() }
    attempt { try $0.readMountList() }
    attempt { try $0.readExportList() }
    attempt { try $0.readPortmapMapping() }
    attempt { try $0.readRPCBinding() }
    attempt { try $0.readAuthSysParameters() }
    for version: UInt32 in [1, 4] {
        for procedure: NLM.Procedure in [.test, .lock, .cancel, .unlock, .granted] {
            attempt { try $0.readNLMLockArguments(procedure, version: version) }
        }
        attempt { try $0.readNLMTestResult(version: version) }
    }
    attempt { try $0.readNLMResult() }
    attempt { try $0.readNLMShareArguments() }
    attempt { try $0.readNLMNotify() }
    attempt { try $0.readNSMMonitor() }
    attempt { try $0.readNSMMonitorID() }
    attempt { try $0.readNSMStatusChange() }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzDecoders(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if FUZZING
import CFuzzDriver

/// SwiftPM links an executable's entry point under this name; with libFuzzer it hands over to
/// libFuzzer's driver.
@_cdecl("swiftnfs_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    swiftnfs_run_fuzzer(argc, argv)
}
#else
import Glibc

@main
struct Replay {
    static func main() {
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let fp = fopen(path, "rb") else {
                print("cannot open \(path)")
                exit(2)
            }
            var data: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, fp)
                if n <= 0 { break }
                data += chunk[0..<n]
            }
            fclose(fp)
            data.withUnsafeBytes { fuzzDecoders($0) }
            count += 1
        }
        print("replayed \(count) inputs")
    }
}
#endif
