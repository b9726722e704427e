import Foundation

/// The programs this package builds, for the tests that run them as separate processes: the
/// one place that knows where they are.
package enum Binaries {
    /// The package's root directory (where `.build` is).
    package static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // SwiftNFSTesting
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()

    /// `swiftnfsd`: $SWIFTNFSD_BIN, else the one built beside the test bundle, else the debug build.
    package static func swiftnfsd() throws -> URL { try locate("swiftnfsd", environment: "SWIFTNFSD_BIN") }

    /// The fuzz target's replayer (`swiftnfs-fuzz` built without -sanitize=fuzzer).
    package static func fuzzReplayer() throws -> URL { try locate("swiftnfs-fuzz", environment: nil) }

    static func locate(_ name: String, environment: String?) throws -> URL {
        var candidates: [URL] = []
        if let environment, let path = ProcessInfo.processInfo.environment[environment], !path.isEmpty {
            candidates.append(URL(fileURLWithPath: path))
        } else {
            if let testBinary = Bundle.main.executableURL {
                candidates.append(testBinary.deletingLastPathComponent().appendingPathComponent(name))
            }
            candidates.append(packageRoot.appendingPathComponent(".build/debug/" + name))
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw ToolFailure(message: "\(name) not found (tried \(candidates.map(\.path).joined(separator: ", "))); "
                                  + "run `swift build`\(environment.map { " or set \($0)" } ?? "")", result: nil)
        }
        return found
    }
}
