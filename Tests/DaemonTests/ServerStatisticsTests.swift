import Foundation
import Daemon
import Testing

@Suite struct ServerStatisticsTests {
    @Test func theFileRoundTripsAndRefusesMissingCounters() throws {
        let text = """
            pid=42
            updated_ms=1700000000123
            handle_cache.hits=10
            handle_cache.misses=2
            handle_cache.evictions=3
            handle_cache.invalidations=4
            handle_cache.entries=5
            handle_cache.descriptors=6

            """
        let s = try #require(ServerStatistics(text: text))
        #expect(s.pid == 42 && s.updated == 1_700_000_000_123)
        let c = s.handleCache
        #expect([c.hits, c.misses, c.evictions, c.invalidations, c.entries, c.descriptors] == [10, 2, 3, 4, 5, 6] as [Int])
        #expect(s.text == text)
        let withoutHits = text.replacingOccurrences(of: "handle_cache.hits=10\n", with: "")
        #expect(ServerStatistics(text: withoutHits) == nil)
    }
}
