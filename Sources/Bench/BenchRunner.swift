import NFS3
import NFS3Client
import NIOConcurrencyHelpers
import NIOCore

/// Runs every configured workload at every configured concurrency against one server and
/// returns one result each. Per run: `connections` new connections, `connections x inflight`
/// workers each issuing one call after another, for `warmup + duration` seconds or until
/// `maxOperations` measured operations, and a progress line every second.
package struct BenchRunner: Sendable {
    package let configuration: BenchConfiguration
    let progress: @Sendable (String) -> Void

    /// `progress` receives the progress lines and preparation notes (the CLI sends them to stderr).
    package init(configuration: BenchConfiguration, progress: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.progress = progress
    }

    /// Opens a session, runs everything, cleans up. `each` sees every result as it is made.
    package func run(group: EventLoopGroup, each: @Sendable (BenchResult) -> Void = { _ in }) async throws -> [BenchResult] {
        try configuration.validate()
        let session = try await BenchSession.open(configuration: configuration, group: group, notes: progress)
        let label = configuration.label ?? "\(configuration.host):\(session.nfsAddress.port ?? 0)"
        var results: [BenchResult] = []
        do {
            for workload in configuration.workloads {
                results += try await run(workload, label: label, session: session, each: each)
            }
        } catch {
            try? await session.close()
            throw error
        }
        try await session.close()
        return results
    }

    func run(_ workload: any Workload, label: String, session: BenchSession,
             each: (BenchResult) -> Void) async throws -> [BenchResult] {
        let directoryName: [UInt8] = .name(workload.name)
        let directory = try await session.directory(named: directoryName, in: session.runDirectory)
        progress("preparing \(workload.name)")
        var results: [BenchResult] = []
        do {
            let prepared = try await workload.prepare(in: directory, session: session)
            for inflight in configuration.inflight {
                let result = try await measure(prepared, workload: workload.name, label: label, inflight: inflight,
                                               session: session)
                each(result)
                results.append(result)
            }
        } catch {
            try? await session.removeTree(directoryName, in: session.runDirectory)
            throw error
        }
        try await session.removeTree(directoryName, in: session.runDirectory)
        return results
    }

    func measure(_ prepared: any PreparedWorkload, workload: String, label: String, inflight: Int,
                 session: BenchSession) async throws -> BenchResult {
        let connections = configuration.connections
        var clients: [NFS3Client] = []
        do {
            for _ in 0..<connections { clients.append(try await session.connect()) }
        } catch {
            for c in clients { await c.close() }
            throw error
        }
        let measureStart = NIODeadline.now() + .nanoseconds(Int64(configuration.warmup * 1e9))
        let budget = OperationBudget(measureStart: measureStart,
                                     deadline: measureStart + .nanoseconds(Int64(configuration.duration * 1e9)),
                                     maxOperations: configuration.maxOperations)
        let live = LiveCounters()
        let workers = clients
        // The server's threads at the start of the measured time, and at its end.
        let serverPID = configuration.serverPID
        let threadsAtStart = Task { () -> [Int32: ThreadCPU] in
            guard let serverPID else { return [:] }
            let wait = measureStart - NIODeadline.now()
            if wait.nanoseconds > 0 { try? await Task.sleep(nanoseconds: UInt64(wait.nanoseconds)) }
            return ThreadCPU.sample(pid: serverPID)
        }
        let tally: WorkerTally = await withTaskGroup(of: Void.self) { outer in
            outer.addTask { [progress] in
                await Self.report(live, every: .seconds(1), start: measureStart, title: "\(workload) \(connections)x\(inflight)",
                                  progress)
            }
            let merged = await withTaskGroup(of: WorkerTally.self) { group in
                for slot in 0..<(connections * inflight) {
                    let client = workers[slot % connections]
                    group.addTask {
                        await Self.work(prepared.makeWorker(slot: slot, client: client), budget: budget, live: live)
                    }
                }
                var all = WorkerTally()
                for await t in group { all.merge(t) }
                return all
            }
            outer.cancelAll()
            return merged
        }
        let threadsAtEnd = serverPID.map { ThreadCPU.sample(pid: $0) }
        for c in clients { await c.close() }
        let end = tally.lastReply ?? NIODeadline.now()
        let seconds = max(Double((end - measureStart).nanoseconds) / 1e9, 1e-9)
        var result = BenchResult(label: label, workload: workload, connections: connections, inflight: inflight,
                                 seconds: seconds, operations: tally.latencies.count, errors: tally.errors,
                                 errorKinds: tally.errorKinds, bytes: tally.bytes, latency: tally.latencies.summary())
        if let threadsAtEnd {
            result.serverThreads = ThreadCPU.used(from: await threadsAtStart.value, to: threadsAtEnd)
            if let (cpu, share) = result.serverCPU {
                let busiest = result.serverThreads?.prefix(4).map { "\($0.name) \($0.cpuSeconds) s" }.joined(separator: ", ") ?? ""
                progress(String(format: "server CPU %.2f s (%.2f cores), busiest thread %.0f%%: ", cpu, cpu / seconds, share * 100)
                         + busiest)
            }
        }
        return result
    }

    /// One slot's loop. Errors are counted (during the warm-up too) and the loop goes on, unless
    /// the connection is gone.
    static func work(_ worker: any WorkloadWorker, budget: OperationBudget, live: LiveCounters) async -> WorkerTally {
        var worker = worker
        var tally = WorkerTally()
        while let measured = budget.next() {
            let start = NIODeadline.now()
            do {
                let bytes = try await worker.step()
                let end = NIODeadline.now()
                if measured {
                    tally.latencies.record(nanoseconds: UInt64((end - start).nanoseconds))
                    tally.bytes += UInt64(bytes)
                    tally.lastReply = end
                    live.add(operations: 1)
                }
            } catch {
                tally.fail(error)
                live.add(errors: 1)
                if BenchError(counting: error)?.isFatal == true { break }
            }
        }
        do {
            try await worker.finish()
        } catch {
            tally.fail(error)
            live.add(errors: 1)
        }
        return tally
    }

    /// Prints operations and errors every interval until cancelled.
    static func report(_ live: LiveCounters, every interval: TimeAmount, start: NIODeadline, title: String,
                       _ progress: @Sendable (String) -> Void) async {
        var previous = (operations: UInt64(0), errors: UInt64(0))
        var previousTime = NIODeadline.now()
        while !Task.isCancelled {
            do { try await Task.sleep(nanoseconds: UInt64(interval.nanoseconds)) } catch { return }
            let now = NIODeadline.now()
            let current = live.snapshot()
            let elapsed = Double((now - previousTime).nanoseconds) / 1e9
            let rate = elapsed > 0 ? Double(current.operations - previous.operations) / elapsed : 0
            let since = Double((now - start).nanoseconds) / 1e9
            let phase = since < 0 ? "warm-up" : "\(Int(since.rounded()))s"
            progress("\(title) \(phase): \(current.operations) ops, \(Int(rate)) ops/s, \(current.errors) errors")
            previous = current
            previousTime = now
        }
    }
}

/// Decides, before each operation, whether there is time and budget left for it, and whether
/// it is measured (after the warm-up).
final class OperationBudget: Sendable {
    let measureStart: NIODeadline
    let deadline: NIODeadline
    let maxOperations: Int?
    private let issued = NIOLockedValueBox(0)

    init(measureStart: NIODeadline, deadline: NIODeadline, maxOperations: Int?) {
        self.measureStart = measureStart
        self.deadline = deadline
        self.maxOperations = maxOperations
    }

    /// Nil when the run is over; otherwise whether the next operation is measured.
    func next() -> Bool? {
        let now = NIODeadline.now()
        guard now < deadline else { return nil }
        guard now >= measureStart else { return false }
        return issued.withLockedValue { n in
            if let maxOperations, n >= maxOperations { return nil }
            n += 1
            return true
        }
    }
}

/// Counts shared by the workers for the progress line.
final class LiveCounters: Sendable {
    private let counts = NIOLockedValueBox((operations: UInt64(0), errors: UInt64(0)))
    func add(operations: UInt64 = 0, errors: UInt64 = 0) {
        counts.withLockedValue { $0.operations += operations; $0.errors += errors }
    }
    func snapshot() -> (operations: UInt64, errors: UInt64) { counts.withLockedValue { $0 } }
}

/// What one worker (or, merged, a whole run) measured.
struct WorkerTally: Sendable {
    var latencies = LatencyRecorder()
    var bytes: UInt64 = 0
    var errors: UInt64 = 0
    var errorKinds: [String: UInt64] = [:]
    var lastReply: NIODeadline?

    mutating func fail(_ error: Error) {
        errors += 1
        let key = BenchError(counting: error)?.tallyKey ?? "\(error)"
        errorKinds[key, default: 0] += 1
    }

    mutating func merge(_ other: WorkerTally) {
        latencies.merge(other.latencies)
        bytes += other.bytes
        errors += other.errors
        errorKinds.merge(other.errorKinds, uniquingKeysWith: +)
        if let t = other.lastReply { lastReply = max(lastReply ?? t, t) }
    }
}
