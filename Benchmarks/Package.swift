// swift-tools-version: 6.1
// Micro-benchmarks of SwiftNFS's hot paths with package-benchmark (instructions and mallocs as
// regression thresholds). A package of its own, so that the main package and its CI do not
// build package-benchmark. Run from this directory: `swift package benchmark`.
import PackageDescription

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The root package is a path dependency, and SwiftPM names a path dependency after its
// directory (lowercased), which is whatever the checkout is called.
let rootDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let root = rootDirectory.lastPathComponent.lowercased()

func benchmark(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: dependencies + [
            "BenchmarkSupport",
            .product(name: "Benchmark", package: "benchmark"),
            .product(name: "NIOCore", package: "swift-nio"),
        ],
        path: "Benchmarks/\(name)",
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
}

let package = Package(
    name: "SwiftNFSBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        // package-benchmark, now named benchmark. Only the malloc interposer trait: the default
        // traits also pull in a runtime interposer that the local package mirror does not have.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // The metrics and regression thresholds every suite uses.
        .target(name: "BenchmarkSupport", dependencies: [
            .product(name: "Benchmark", package: "benchmark"),
            .product(name: "NFS3", package: root), .product(name: "ONCRPC", package: root),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // Decoding calls and encoding replies of GETATTR, READ, WRITE and READDIRPLUS.
        benchmark("CodecBenchmarks", [
            .product(name: "XDR", package: root), .product(name: "ONCRPC", package: root),
            .product(name: "NFS3", package: root),
        ]),
        // Record reassembly and the duplicate request cache.
        benchmark("TransportBenchmarks", [
            .product(name: "ONCRPC", package: root), .product(name: "RPCTransport", package: root),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        // Whole procedures (GETATTR, READ, WRITE, CREATE + REMOVE) through the NFSv3 program,
        // without the transport: CPU and allocations per call.
        benchmark("ProcedureBenchmarks", [
            .product(name: "NFS3", package: root), .product(name: "ONCRPC", package: root),
            .product(name: "NFS3Server", package: root),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Handle verification and attribute lookup under contention.
        benchmark("FileStoreBenchmarks", [
            .product(name: "FileStore", package: root),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
