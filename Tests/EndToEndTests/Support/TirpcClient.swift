import Foundation
import SwiftNFSTesting

/// Runs `Clients/tirpc_client.c`, compiled once per test run against the
/// system libtirpc, against one server's NFS/MOUNT port.
struct TirpcClient {
    enum Transport: String, CaseIterable, Sendable, CustomStringConvertible {
        case tcp, udp
        var description: String { rawValue }
    }

    struct Attributes: Equatable {
        let type: Int  // ftype3: 1 regular file, 2 directory
        let mode: Int
        let nlink: Int
        let size: Int
        let fileid: UInt64
    }

    struct ReadResult: Equatable {
        let count: Int
        let eof: Bool
        let fnv1a64: String
    }

    let executable: String
    let port: Int

    init(_ server: ServerProcess) async throws {
        executable = try await Self.build.value
        port = server.nfsPort
    }

    /// Runs one command; the caller inspects the exit status.
    func run(_ transport: Transport, _ command: String, _ arguments: String...) async throws -> ToolResult {
        try await Tools.run(executable, ["127.0.0.1", String(port), transport.rawValue, command] + arguments)
    }

    /// Runs one command and throws unless it exits 0.
    @discardableResult
    func checked(_ transport: Transport, _ command: String, _ arguments: [String]) async throws -> ToolResult {
        try await Tools.runChecked(executable, ["127.0.0.1", String(port), transport.rawValue, command] + arguments)
    }

    func mount(_ path: String, over transport: Transport = .tcp) async throws -> String {
        try field("fh", of: try await checked(transport, "mnt", [path]))
    }

    func getattr(_ fh: String, over transport: Transport = .tcp) async throws -> Attributes {
        let result = try await checked(transport, "getattr", [fh])
        guard let type = Int(try field("type", of: result)),
            let mode = Int(try field("mode", of: result), radix: 8),
            let nlink = Int(try field("nlink", of: result)),
            let size = Int(try field("size", of: result)),
            let fileid = UInt64(try field("fileid", of: result))
        else { throw ToolFailure(message: "unparsable getattr output", result: result) }
        return Attributes(type: type, mode: mode, nlink: nlink, size: size, fileid: fileid)
    }

    func lookup(_ dir: String, _ name: String) async throws -> String {
        try field("fh", of: try await checked(.tcp, "lookup", [dir, name]))
    }

    func create(_ dir: String, _ name: String) async throws -> String {
        try field("fh", of: try await checked(.tcp, "create", [dir, name]))
    }

    func mkdir(_ dir: String, _ name: String) async throws -> String {
        try field("fh", of: try await checked(.tcp, "mkdir", [dir, name]))
    }

    /// Writes `count` pattern bytes (see `Pattern`) at `offset`, FILE_SYNC.
    func write(_ fh: String, offset: Int, count: Int) async throws {
        try await checked(.tcp, "write", [fh, String(offset), String(count)])
    }

    func read(_ fh: String, offset: Int, count: Int, over transport: Transport = .tcp) async throws -> ReadResult {
        let result = try await checked(transport, "read", [fh, String(offset), String(count)])
        guard let count = Int(try field("count", of: result)) else {
            throw ToolFailure(message: "unparsable read output", result: result)
        }
        return ReadResult(
            count: count, eof: try field("eof", of: result) == "1", fnv1a64: try field("fnv1a64", of: result))
    }

    func rename(_ fromDir: String, _ name: String, to toDir: String, _ newName: String) async throws {
        try await checked(.tcp, "rename", [fromDir, name, toDir, newName])
    }

    private func field(_ key: String, of result: ToolResult) throws -> String {
        guard let value = result.value(key) else {
            throw ToolFailure(message: "no '\(key)=' in tirpc_client output", result: result)
        }
        return value
    }

    // MARK: Building

    /// The compiled client's path; compiled on first use, once per process.
    private static let build = Task<String, any Error> { try await compile() }

    private static func compile() async throws -> String {
        let source = try sourceURL()
        let outputDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("swiftnfs-tirpc-client-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outputDir, withIntermediateDirectories: true)
        let output = outputDir.appendingPathComponent("tirpc_client").path

        let cflags = try await Tools.runChecked("pkg-config", ["--cflags", "libtirpc"]).stdout
        let libs = try await Tools.runChecked("pkg-config", ["--libs", "libtirpc"]).stdout
        func words(_ text: String) -> [String] { text.split(whereSeparator: \.isWhitespace).map(String.init) }
        try await Tools.runChecked(
            "cc", ["-O1", "-Wall"] + words(cflags) + [source.path] + words(libs) + ["-o", output])
        return output
    }

    /// Found through `#filePath`: Package.swift excludes `Clients/` from the
    /// test target instead of bundling it as a resource.
    private static func sourceURL() throws -> URL {
        let source = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // Support
            .deletingLastPathComponent()  // EndToEndTests
            .appendingPathComponent("Clients/tirpc_client.c")
        guard FileManager.default.fileExists(atPath: source.path) else {
            throw ToolFailure(message: "\(source.path) not found", result: nil)
        }
        return source
    }
}

/// The byte pattern tirpc_client writes: byte at file offset i is (i*7+3) & 0xff.
enum Pattern {
    static func bytes(offset: Int = 0, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: (offset + $0) &* 7 &+ 3) }
    }

    /// FNV-1a 64-bit as tirpc_client's `read` prints it.
    static func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
