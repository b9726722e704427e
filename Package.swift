// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "SwiftNFS",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "swiftnfsd", targets: ["swiftnfsd"]),
        // For the micro-benchmarks in Benchmarks/, a separate package that depends on this one.
        .library(name: "XDR", targets: ["XDR"]),
        .library(name: "ONCRPC", targets: ["ONCRPC"]),
        .library(name: "NFS3", targets: ["NFS3"]),
        .library(name: "FileStore", targets: ["FileStore"]),
        // For the package-benchmark suite of whole procedures (`standaloneNFS3Program`).
        .library(name: "NFS3Server", targets: ["NFS3Server"]),
        .library(name: "RPCTransport", targets: ["RPCTransport"]),
        .library(name: "NFS3Client", targets: ["NFS3Client"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // RFC 4506 primitives on ByteBuffer. NIOCore only.
        .target(name: "XDR", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // RFC 5531 messages, auth, record marking, dispatch, RPC-level errors. No sockets.
        .target(name: "ONCRPC", dependencies: [
            "XDR",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        // TCP and UDP listeners and the client used by tests, registration and benchmarks.
        .target(name: "RPCTransport", dependencies: [
            "ONCRPC", "XDR",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // RFC 1833 portmap v2 and rpcbind v3/v4.
        .target(name: "Portmap", dependencies: ["ONCRPC", "XDR", "RPCTransport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]),
        // RFC 1813 appendix I: MOUNT v1/v3.
        .target(name: "Mount", dependencies: ["ONCRPC", "XDR", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]),
        // RFC 1813 wire types, one file per procedure.
        .target(name: "NFS3", dependencies: ["XDR", .product(name: "NIOCore", package: "swift-nio")]),
        // The backing directory: syscalls, attributes, handle identity. Knows nothing of XDR.
        .target(name: "FileStore", dependencies: [
            "CNFSShims",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Linux system calls Swift cannot call directly (openat2, per-thread fsuid, makedev).
        .target(name: "CNFSShims"),
        // The Network Lock Manager's wire types (versions 1, 3 and 4).
        .target(name: "NLM", dependencies: [
            "XDR", "ONCRPC", "Locking", "Portmap", "RPCTransport",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // POSIX byte-range locks keyed by file identity, the layer under NLM.
        .target(name: "Locking", dependencies: [.product(name: "NIOConcurrencyHelpers", package: "swift-nio")]),
        // NFSv3 semantics on top of FileStore.
        .target(name: "NFS3Server", dependencies: [
            "NFS3", "ONCRPC", "XDR", "FileStore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The write-back journal on the durable directory and the checkpointed copy.
        .target(name: "Journal", dependencies: [
            "XDR", "FileStore", "CNFSShims",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Configuration, exports, and the ServiceGroup that wires it all together.
        .target(name: "Daemon", dependencies: [
            "XDR", "ONCRPC", "RPCTransport", "Portmap", "Mount", "NFS3", "NFS3Server", "FileStore", "Journal", "CNFSShims", "NLM", "Locking", "HA", "Replication",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The journal streamed from an HA active to its standbys (a listener, a follower).
        .target(name: "Replication", dependencies: [
            "Journal", "XDR",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // High availability: etcd's v3 HTTP/JSON gateway, leader election with a lease, self-fencing.
        // (FileStore for ServerClock alone: the injectable monotonic clock the election goes by.)
        .target(name: "HA", dependencies: [
            "FileStore", "CNFSShims",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // A typed async NFSv3 and MOUNT v3 client: for tests, the benchmark and operators' tools.
        .target(name: "NFS3Client", dependencies: [
            "RPCTransport", "ONCRPC", "NFS3", "Mount", "Portmap", "XDR", "NLM",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // withTestServer: a server in the test's own process, on a temporary export and ephemeral ports;
        // ServerProcess: `swiftnfsd serve` as a child process, for the tests that need one (crashes, signals).
        .target(name: "SwiftNFSTesting", dependencies: [
            "Daemon", "HA", "NFS3Client", "NFS3", "ONCRPC", "FileStore", "Journal", "NLM", "Portmap", "RPCTransport", "XDR",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The load generator behind `swiftnfsd bench`: NFSv3 workloads over NFS3Client.
        .target(name: "Bench", dependencies: [
            "NFS3Client", "ONCRPC", "NFS3", "Mount", "Portmap",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        .executableTarget(name: "swiftnfsd", dependencies: [
            "Daemon", "Bench", "Journal", "FileStore", "HA", "NFS3Client", "NFS3", "ONCRPC",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // libFuzzer target for every decoder of network input (see the file for how to build it).
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "swiftnfs-fuzz", dependencies: [
            "CFuzzDriver", "XDR", "ONCRPC", "NFS3", "Mount", "Portmap", "NLM", .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "XDRTests", dependencies: ["XDR"]),
        .testTarget(name: "LockingTests", dependencies: ["Locking"]),
        // The election's state machine with a fake clock; the client, the election and `swiftnfsd ha` against a real etcd.
        .testTarget(name: "HATests", dependencies: ["HA", "Daemon", "NFS3Client", "SwiftNFSTesting", "FileStore", "Journal", "Replication",
                                                   .product(name: "NIOCore", package: "swift-nio"),
                                                   .product(name: "Logging", package: "swift-log")]),
        // Serving nodes against a real etcd, in network namespaces: the service address moves, the hook runs.
        .testTarget(name: "HALabTests", dependencies: ["HA", "SwiftNFSTesting", "NFS3Client", "NFS3",
                                                      .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "NLMTests", dependencies: ["NLM", "XDR", "Locking", "ONCRPC", .product(name: "NIOCore", package: "swift-nio"),
                                                    .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]),
        .testTarget(name: "LockServiceTests", dependencies: [
            "SwiftNFSTesting", "NFS3Client", "NFS3", "NLM", "ONCRPC", "RPCTransport", "XDR",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // The replication link: its codec, a standby's progress, and an active and a standby over
        // real sockets with real journals (an in-process server written to through NFS).
        .testTarget(name: "ReplicationTests", dependencies: [
            "Replication", "Journal", "FileStore", "NFS3Client", "NFS3", "SwiftNFSTesting",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "JournalTests", dependencies: ["Journal", "FileStore", "XDR", "CNFSShims", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "BenchTests", dependencies: ["Bench", "NFS3", "NFS3Client", "SwiftNFSTesting", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "ONCRPCTests", dependencies: ["ONCRPC", "XDR"]),
        .testTarget(name: "RPCTransportTests", dependencies: [
            "RPCTransport", "ONCRPC", "XDR",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "NFS3Server", "ONCRPC", "SwiftNFSTesting",
                                                       .product(name: "NIOCore", package: "swift-nio")],
                    resources: [.copy("Corpus")]),
        .testTarget(name: "FileStoreTests", dependencies: ["FileStore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log")]),
        // NFSv3 procedures through the wire against a server in the test process, one file per procedure.
        .testTarget(name: "NFS3ServerTests", dependencies: [
            "SwiftNFSTesting", "NFS3Client", "NFS3", "FileStore", .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "NFS3Tests", dependencies: ["NFS3", "XDR", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "NFS3Client", "SwiftNFSTesting", "Daemon", "RPCTransport", "ONCRPC", "XDR", "NFS3", "Mount", "Portmap", "NLM",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], exclude: ["Clients"]),
    ]
)
