import FileStore
import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

/// UNSTABLE data in durable mode waits in the served file until its COMMIT or until it has
/// waited the write-back delay, measured on a clock the test moves.
@Suite struct WriteBackClockTests {
    @Test("UNSTABLE data reaches the journal when the delay has passed on the server's clock, not before")
    func writtenBackOnTheClock() async throws {
        let clock = ManualClock()
        var options = TestServerOptions()
        options.durable = true
        options.writeBack = .seconds(60)
        options.clock = clock
        try await withTestServer(options) { server, c, root in
            let f = try #require(try await c.create(root, name("f")).object)
            _ = try await c.write(f, offset: 0, data: ByteBuffer(repeating: 5, count: 10_000), stable: .unstable)
            func writes() throws -> Int {
                try server.journalChanges().filter { if case .write = $0 { return true } else { return false } }.count
            }
            // A minute on the server's clock, which no real time in this test comes near: 59 s
            // are not enough.
            clock.advance(by: .seconds(59))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try writes() == 0, "UNSTABLE data journaled before its delay had passed")
            // Past 60 s: the next flush copies it (real time only for that thread to run).
            var copied = 0
            for _ in 0..<50 where copied == 0 {
                clock.advance(by: .milliseconds(500))
                try await Task.sleep(for: .milliseconds(50))
                copied = try writes()
            }
            #expect(copied == 1, "UNSTABLE data not journaled once its delay had passed on the server's clock")
        }
    }
}
