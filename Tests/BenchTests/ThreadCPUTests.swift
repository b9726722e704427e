import Bench
import Foundation
import Testing

/// The per-thread CPU of a server process, read from /proc (`swiftnfsd bench --server-pid`).
@Suite struct ThreadCPUTests {
    @Test("utime and stime are read past a thread name holding spaces and parentheses")
    func parsesStat() {
        let stat = "1234 (NIO-ELT-1 (#0) x) S 1 1234 1234 0 -1 4194368 500 0 0 0 250 75 0 0 20 0 40 0 100"
        #expect(ThreadCPU.ticks(stat) == 325)
        #expect(ThreadCPU.ticks("garbage") == nil)
    }

    @Test("a busy thread of this process shows its CPU; idle ones are left out; busiest first")
    func samplesThisProcess() throws {
        let pid = getpid()
        let before = ThreadCPU.sample(pid: pid)
        #expect(!before.isEmpty)
        // Burn 0.3 s of this thread's own CPU (however long that takes on a busy machine).
        func threadCPU() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        let start = threadCPU(), deadline = Date().addingTimeInterval(60)
        var x: UInt64 = 1
        while threadCPU() - start < 0.3 && Date() < deadline {
            for _ in 0..<10_000 { x = x &* 6364136223846793005 &+ 1442695040888963407 }
        }
        let used = ThreadCPU.used(from: before, to: ThreadCPU.sample(pid: pid))
        #expect(x != 0)
        #expect((used.first?.cpuSeconds ?? 0) >= 0.1, "\(used)")
        #expect(zip(used, used.dropFirst()).allSatisfy { $0.cpuSeconds >= $1.cpuSeconds })
        #expect(used.allSatisfy { $0.cpuSeconds > 0 })
    }
}
