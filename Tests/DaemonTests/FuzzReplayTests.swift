import Foundation
import SwiftNFSTesting
import Testing

/// Replays the fuzz corpus (seeds and every input that ever crashed a decoder) through the
/// decoders, using the replayer build of the fuzz target.
@Suite struct FuzzReplayTests {
    @Test func corpusReplaysWithoutCrashing() async throws {
        let binary = try Binaries.fuzzReplayer()
        var inputs: [String] = []
        for dir in ["seeds", "regressions"] {
            let d = Binaries.packageRoot.appendingPathComponent("Tests/FuzzCorpus/\(dir)")
            for f in try FileManager.default.contentsOfDirectory(atPath: d.path) where !f.hasPrefix(".") {
                inputs.append(d.appendingPathComponent(f).path)
            }
        }
        #expect(inputs.count >= 10)
        let replay = try await Tools.run(binary.path, inputs)
        #expect(replay.status == 0, "\(replay)")
        #expect(replay.stdout.contains("replayed \(inputs.count) inputs"))
    }
}
